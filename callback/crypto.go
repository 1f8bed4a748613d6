package callback

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WeChat's signature scheme is SHA-1; not our choice.
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxscan/wxscan/events"
)

// Signature is WeChat's request signature: the hex SHA-1 of token and parts,
// sorted as strings and concatenated. The URL parameter signature is
// Signature(token, timestamp, nonce); msg_signature is
// Signature(token, timestamp, nonce, encrypt) with the Encrypt value.
func Signature(token string, parts ...string) string {
	s := make([]string, 0, len(parts)+1)
	s = append(s, token)
	s = append(s, parts...)
	slices.Sort(s)
	h := sha1.New() //nolint:gosec // see import
	for _, p := range s {
		h.Write([]byte(p))
	}
	var sum [sha1.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

const (
	// aesKeyLen is the length of an EncodingAESKey: 43 characters of base64
	// that decode to a 32-byte AES-256 key once "=" is appended.
	aesKeyLen = 43
	// padBlock is the block size of WeChat's PKCS#7 padding (not AES's 16).
	padBlock = 32
	// randomLen is the length of the random prefix of every plaintext.
	randomLen = 16
)

// Cipher encrypts and decrypts WeChat's Encrypt values for one EncodingAESKey
// and AppID: AES-256-CBC with IV = key[:16] over
// random(16) + big-endian uint32 length + message + AppID, PKCS#7-padded to
// 32 bytes. A Cipher is safe for concurrent use.
type Cipher struct {
	block cipher.Block
	iv    []byte
	appid []byte
}

// NewCipher returns a Cipher for encodingAESKey, which must be the 43 base64
// characters shown on WeChat's admin page. appid is appended to every
// plaintext that Encrypt seals. The error never contains the key.
func NewCipher(encodingAESKey, appid string) (*Cipher, error) {
	if len(encodingAESKey) != aesKeyLen {
		return nil, fmt.Errorf("callback: EncodingAESKey must be %d characters of base64, got %d characters", aesKeyLen, len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("callback: EncodingAESKey is not valid base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("callback: EncodingAESKey: %w", err)
	}
	return &Cipher{block: block, iv: key[:aes.BlockSize], appid: []byte(appid)}, nil
}

// Encrypt seals plaintext as a base64 Encrypt value. random is the 16-byte
// prefix; nil draws it from crypto/rand (tests pass a fixed one to reproduce
// known ciphertexts).
func (c *Cipher) Encrypt(random, plaintext []byte) (string, error) {
	if random != nil && len(random) != randomLen {
		return "", fmt.Errorf("callback: encrypt: random prefix must be %d bytes, got %d", randomLen, len(random))
	}
	if uint64(len(plaintext)) > math.MaxUint32 {
		return "", errors.New("callback: encrypt: message too long")
	}
	n := randomLen + 4 + len(plaintext) + len(c.appid)
	pad := padBlock - n%padBlock
	buf := make([]byte, n+pad)
	if random == nil {
		if _, err := rand.Read(buf[:randomLen]); err != nil {
			return "", fmt.Errorf("callback: encrypt: %w", err)
		}
	} else {
		copy(buf, random)
	}
	binary.BigEndian.PutUint32(buf[randomLen:], uint32(len(plaintext)))
	copy(buf[randomLen+4:], plaintext)
	copy(buf[randomLen+4+len(plaintext):], c.appid)
	for i := n; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// errDecrypt is the cause of every Decrypt failure; the messages say which
// check failed but carry no plaintext.
var errDecrypt = errors.New("callback: decrypt")

// Decrypt opens a base64 Encrypt value and returns the message and the AppID
// it carries; the caller checks that AppID. It fails, never panics, on bad
// base64, a length that is not whole AES blocks, bad padding or a length
// field that does not fit. A wrong key almost always fails one of these
// checks; when it does not, the AppID comes out wrong.
func (c *Cipher) Decrypt(b64 string) (plaintext []byte, appid string, err error) {
	buf, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("%w: bad base64", errDecrypt)
	}
	if len(buf) < padBlock || len(buf)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: ciphertext length %d is not a multiple of %d", errDecrypt, len(buf), aes.BlockSize)
	}
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > padBlock {
		return nil, "", fmt.Errorf("%w: bad padding", errDecrypt)
	}
	for _, b := range buf[len(buf)-pad:] {
		if int(b) != pad {
			return nil, "", fmt.Errorf("%w: bad padding", errDecrypt)
		}
	}
	buf = buf[:len(buf)-pad]
	if len(buf) < randomLen+4 {
		return nil, "", fmt.Errorf("%w: plaintext too short", errDecrypt)
	}
	n := binary.BigEndian.Uint32(buf[randomLen:])
	rest := buf[randomLen+4:]
	if uint64(n) > uint64(len(rest)) {
		return nil, "", fmt.Errorf("%w: length field out of range", errDecrypt)
	}
	return rest[:n:n], string(rest[n:]), nil
}

// EncryptedReply seals plaintextXML (a passive reply) for safe mode and wraps
// it in WeChat's envelope with its msg_signature over token, timestamp, nonce
// and the Encrypt value.
func EncryptedReply(c *Cipher, token, timestamp, nonce string, plaintextXML []byte) ([]byte, error) {
	enc, err := c.Encrypt(nil, plaintextXML)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(enc) + len(nonce) + len(timestamp) + 160)
	b.WriteString("<xml><Encrypt>")
	writeCDATA(&b, enc)
	b.WriteString("</Encrypt><MsgSignature>")
	writeCDATA(&b, Signature(token, timestamp, nonce, enc))
	b.WriteString("</MsgSignature><TimeStamp>")
	writeEscaped(&b, timestamp)
	b.WriteString("</TimeStamp><Nonce>")
	writeCDATA(&b, nonce)
	b.WriteString("</Nonce></xml>")
	return b.Bytes(), nil
}

// PassiveTextReply renders r as WeChat's passive text reply XML, created at
// now. Any text is safe in it: "]]>" is split across CDATA sections and
// characters XML 1.0 cannot carry become U+FFFD.
func PassiveTextReply(r events.Reply, now time.Time) []byte {
	var b bytes.Buffer
	b.Grow(len(r.ToUser) + len(r.FromUser) + len(r.Content) + 200)
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, r.ToUser)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, r.FromUser)
	b.WriteString("</FromUserName><CreateTime>")
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString("</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>")
	writeCDATA(&b, r.Content)
	b.WriteString("</Content></xml>")
	return b.Bytes()
}

// writeCDATA writes s as one or more CDATA sections.
func writeCDATA(b *bytes.Buffer, s string) {
	b.WriteString("<![CDATA[")
	for {
		i := strings.Index(s, "]]>")
		if i < 0 {
			break
		}
		writeChars(b, s[:i+2])
		b.WriteString("]]><![CDATA[")
		s = s[i+2:]
	}
	writeChars(b, s)
	b.WriteString("]]>")
}

// writeEscaped writes s as escaped character data.
func writeEscaped(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			writeRune(b, r)
		}
	}
}

func writeChars(b *bytes.Buffer, s string) {
	for _, r := range s {
		writeRune(b, r)
	}
}

// writeRune writes r, or U+FFFD when XML 1.0 cannot carry it (control
// characters, invalid UTF-8, non-characters U+FFFE and U+FFFF).
func writeRune(b *bytes.Buffer, r rune) {
	ok := r == '\t' || r == '\n' || r == '\r' ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= utf8.MaxRune)
	if !ok {
		r = utf8.RuneError
	}
	b.WriteRune(r)
}
