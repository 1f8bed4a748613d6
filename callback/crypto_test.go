package callback_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
)

// vector is one entry of wechat-vectors.json: verified values from WeChat
// SDKs, named by their source.
type vector struct {
	Name           string `json:"name"`
	Token          string `json:"token"`
	EncodingAESKey string `json:"encoding_aes_key"`
	AppID          string `json:"appid"`
	Timestamp      string `json:"timestamp"`
	Nonce          string `json:"nonce"`
	MsgSignature   string `json:"msg_signature"`
	Signature      string `json:"signature"`
	Encrypt        string `json:"encrypt"`
	Random         string `json:"random"`
	Plaintext      string `json:"plaintext"`
	ExpectedRandom string `json:"expected_random"`
	ExpectedXML    string `json:"expected_xml"`
	ExpectedAppID  string `json:"expected_appid"`
	DerivedMsgSig  string `json:"derived_msg_signature_ts1409304348_nonce_xxxxxx"`
}

// The shared copy is the one the project verified; testdata/ holds a copy
// so that the package tests alone.
const (
	sharedVectors = "../../shared/testdata/wechat-vectors.json"
	localVectors  = "testdata/wechat-vectors.json"
)

// readVectors returns the vectors in path by name, skipping the test when
// the file is absent.
func readVectors(tb testing.TB, path string) map[string]vector {
	tb.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("%s is absent", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	m := make(map[string]vector, len(vs))
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}

func vectorNamed(tb testing.TB, vs map[string]vector, name string) vector {
	tb.Helper()
	v, ok := vs[name]
	if !ok {
		tb.Fatalf("vector %q is missing", name)
	}
	return v
}

func mustCipher(tb testing.TB, key, appid string) *callback.Cipher {
	tb.Helper()
	c, err := callback.NewCipher(key, appid)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestVectors(t *testing.T) {
	for _, path := range []string{sharedVectors, localVectors} {
		t.Run(path, func(t *testing.T) {
			vs := readVectors(t, path)

			t.Run("easywechat_pamtest_decrypt", func(t *testing.T) {
				v := vectorNamed(t, vs, "easywechat_pamtest_decrypt")
				if got, want := callback.Signature(v.Token, v.Timestamp, v.Nonce, v.Encrypt), v.MsgSignature; got != want {
					t.Fatalf("msg_signature=%s, want %s", got, want)
				}
				c := mustCipher(t, v.EncodingAESKey, v.AppID)
				msg, appid, err := c.Decrypt(v.Encrypt)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := string(msg), v.ExpectedXML; got != want {
					t.Fatalf("xml=%q, want %q", got, want)
				}
				if got, want := appid, v.ExpectedAppID; got != want {
					t.Fatalf("appid=%q, want %q", got, want)
				}
				// Sealing the message again with the published random prefix
				// must give the published ciphertext byte for byte.
				enc, err := c.Encrypt([]byte(v.ExpectedRandom), msg)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := enc, v.Encrypt; got != want {
					t.Fatalf("re-encrypted=%s, want %s", got, want)
				}
			})

			t.Run("wxjava_pamtest_encrypt_fixed_random", func(t *testing.T) {
				v := vectorNamed(t, vs, "wxjava_pamtest_encrypt_fixed_random")
				c := mustCipher(t, v.EncodingAESKey, v.AppID)
				enc, err := c.Encrypt([]byte(v.Random), []byte(v.Plaintext))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := enc, v.Encrypt; got != want {
					t.Fatalf("encrypt=%s, want %s", got, want)
				}
				if got, want := callback.Signature(v.Token, "1409304348", "xxxxxx", enc), v.DerivedMsgSig; got != want {
					t.Fatalf("msg_signature=%s, want %s", got, want)
				}
				msg, appid, err := c.Decrypt(enc)
				if err != nil {
					t.Fatal(err)
				}
				if string(msg) != v.Plaintext || appid != v.AppID {
					t.Fatalf("decrypt=%q %q, want %q %q", msg, appid, v.Plaintext, v.AppID)
				}
			})

			t.Run("fastwego_aes_roundtrip", func(t *testing.T) {
				v := vectorNamed(t, vs, "fastwego_aes_roundtrip")
				c := mustCipher(t, v.EncodingAESKey, v.AppID)
				msg, appid, err := c.Decrypt(v.Encrypt)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := string(msg), v.ExpectedXML; got != want {
					t.Fatalf("xml=%q, want %q", got, want)
				}
				if got, want := appid, v.ExpectedAppID; got != want {
					t.Fatalf("appid=%q, want %q", got, want)
				}
				enc, err := c.Encrypt([]byte(v.Random), msg)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := enc, v.Encrypt; got != want {
					t.Fatalf("re-encrypted=%s, want %s", got, want)
				}
			})

			t.Run("chanxuehong_sign", func(t *testing.T) {
				v := vectorNamed(t, vs, "chanxuehong_sign")
				if got, want := callback.Signature(v.Token, v.Timestamp, v.Nonce), v.Signature; got != want {
					t.Fatalf("signature=%s, want %s", got, want)
				}
				// The order of the parts does not matter: they are sorted.
				if got, want := callback.Signature(v.Token, v.Nonce, v.Timestamp), v.Signature; got != want {
					t.Fatalf("signature=%s, want %s", got, want)
				}
			})
		})
	}
}

const (
	keyA   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	keyB   = "AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS"
	appidA = "wxb11529c136998cb6"
)

func TestNewCipher(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"valid", keyA, true},
		{"empty", "", false},
		{"42 characters", keyA[:42], false},
		{"44 characters", keyA + "=", false},
		{"not base64", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!", false},
		{"url alphabet", "abcdefghijklmnopqrstuvwxyz0123456789ABCDE_-", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := callback.NewCipher(tc.key, appidA)
			if got, want := err == nil, tc.ok; got != want {
				t.Fatalf("ok=%v, want %v (err=%v)", got, want, err)
			}
			if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q contains the key", err)
			}
		})
	}
}

func TestCipherRoundTrip(t *testing.T) {
	c := mustCipher(t, keyA, appidA)
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := [][]byte{
		nil,
		[]byte("我是中文abcd123"),
		[]byte("<xml><Content><![CDATA[扫码盘点 A-01]]></Content></xml>"),
		bytes.Repeat([]byte{'x'}, 64-16-4-len(appidA)), // a whole block of padding
	}
	for range 200 {
		m := make([]byte, rng.IntN(3000))
		for i := range m {
			m[i] = byte(rng.Uint32())
		}
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		enc, err := c.Encrypt(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw)%32 != 0 {
			t.Fatalf("ciphertext length %d is not a multiple of 32", len(raw))
		}
		got, appid, err := c.Decrypt(enc)
		if err != nil {
			t.Fatalf("len %d: %v", len(m), err)
		}
		if !bytes.Equal(got, m) || appid != appidA {
			t.Fatalf("len %d: round trip gave %d bytes for %q", len(m), len(got), appid)
		}
	}
	// Two encryptions of one message differ: the random prefix is fresh.
	a, _ := c.Encrypt(nil, []byte("hello"))
	b, _ := c.Encrypt(nil, []byte("hello"))
	if a == b {
		t.Fatal("two encryptions are equal")
	}
	if _, err := c.Encrypt([]byte("short"), []byte("hello")); err == nil {
		t.Fatal("Encrypt took a 5-byte random prefix")
	}
}

// sealRaw CBC-encrypts plain (whole AES blocks) with key the way WeChat
// does, without any framing, to build malformed ciphertexts.
func sealRaw(tb testing.TB, key string, plain []byte) string {
	tb.Helper()
	k, err := base64.StdEncoding.DecodeString(key + "=")
	if err != nil {
		tb.Fatal(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, k[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// frame is WeChat's plaintext layout with a given length field and pad.
func frame(length uint32, body []byte, padTo int, padByte func(n int) byte) []byte {
	b := append(bytes.Repeat([]byte{'r'}, 16), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[16:], length)
	b = append(b, body...)
	n := padTo - len(b)%padTo
	for range n {
		b = append(b, padByte(n))
	}
	return b
}

func TestDecryptRejects(t *testing.T) {
	c := mustCipher(t, keyA, appidA)
	good := func(n int) byte { return byte(n) }
	for _, tc := range []struct {
		name string
		enc  string
	}{
		{"empty", ""},
		{"bad base64", "not base64!"},
		{"16 bytes", base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"pad 0", sealRaw(t, keyA, frame(3, []byte("abc"+appidA), 32, func(int) byte { return 0 }))},
		{"pad 33", sealRaw(t, keyA, append(make([]byte, 31), 33))},
		{"pad 255", sealRaw(t, keyA, append(make([]byte, 63), 255))},
		{"pad bytes differ", sealRaw(t, keyA, append(frame(3, []byte("abc"+appidA), 32, good)[:32-2], 1, 2))},
		{"all padding", sealRaw(t, keyA, bytes.Repeat([]byte{32}, 32))},
		{"shorter than the header", sealRaw(t, keyA, append(make([]byte, 19), bytes.Repeat([]byte{13}, 13)...))},
		{"length beyond the end", sealRaw(t, keyA, frame(1000, []byte("abc"+appidA), 32, good))},
		{"length field max", sealRaw(t, keyA, frame(0xFFFFFFFF, []byte("abc"), 32, good))},
		{"other key", func() string {
			s, _ := mustCipher(t, keyB, appidA).Encrypt([]byte("0123456789abcdef"), []byte("hello"))
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, appid, err := c.Decrypt(tc.enc)
			if err == nil && appid == appidA {
				t.Fatalf("Decrypt accepted it: %q from %q", msg, appid)
			}
		})
	}
	// The framing itself is right: a well-formed raw frame decrypts.
	msg, appid, err := c.Decrypt(sealRaw(t, keyA, frame(3, []byte("abc"+appidA), 32, good)))
	if err != nil || string(msg) != "abc" || appid != appidA {
		t.Fatalf("Decrypt(frame)=%q %q %v", msg, appid, err)
	}
}

func FuzzDecrypt(f *testing.F) {
	for _, path := range []string{localVectors} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var vs []vector
		if err := json.Unmarshal(b, &vs); err != nil {
			f.Fatal(err)
		}
		for _, v := range vs {
			if v.Encrypt != "" {
				f.Add(v.Encrypt, []byte(v.ExpectedXML))
			}
		}
	}
	f.Add("", []byte{})
	f.Add("AAAA", []byte("我是中文"))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 64)), []byte("]]>"))
	c := mustCipher(f, keyA, appidA)
	f.Fuzz(func(t *testing.T, enc string, msg []byte) {
		// Arbitrary input: an error or a result, never a panic.
		if got, _, err := c.Decrypt(enc); err == nil && len(got) > len(enc) {
			t.Fatalf("decrypted %d bytes out of %d characters", len(got), len(enc))
		}
		// Valid input: what Encrypt seals, Decrypt opens.
		sealed, err := c.Encrypt(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, appid, err := c.Decrypt(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) || appid != appidA {
			t.Fatalf("round trip: %q %q, want %q %q", got, appid, msg, appidA)
		}
	})
}

// envelope is the outer XML of a safe-mode body or passive reply.
type envelope struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

func TestEncryptedReply(t *testing.T) {
	c := mustCipher(t, keyA, appidA)
	plain := []byte("<xml><Content><![CDATA[ok]]></Content></xml>")
	out, err := callback.EncryptedReply(c, "pamtest", "1409304348", "xxxxxx", plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("<xml><Encrypt><![CDATA[")) {
		t.Fatalf("reply=%s", out)
	}
	var env envelope
	if err := xml.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	if env.TimeStamp != "1409304348" || env.Nonce != "xxxxxx" {
		t.Fatalf("timestamp=%q nonce=%q", env.TimeStamp, env.Nonce)
	}
	if got, want := env.MsgSignature, callback.Signature("pamtest", "1409304348", "xxxxxx", env.Encrypt); got != want {
		t.Fatalf("MsgSignature=%s, want %s", got, want)
	}
	msg, appid, err := c.Decrypt(env.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, plain) || appid != appidA {
		t.Fatalf("decrypted %q %q", msg, appid)
	}
}

// passiveReply is WeChat's passive text reply.
type passiveReply struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
}

func TestPassiveTextReply(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"plain", "已记录 6901234567892，共 3 件", "已记录 6901234567892，共 3 件"},
		{"cdata end", "a]]>b]]>", "a]]>b]]>"},
		{"markup", "<b>&amp;</b>", "<b>&amp;</b>"},
		{"control characters", "a\x00b\x1bc\td\n", "a\uFFFDb\uFFFDc\td\n"},
		{"invalid utf-8", "a\xffb", "a\uFFFDb"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := callback.PassiveTextReply(events.Reply{
				EventID: "e1", ToUser: "oUser]]>1", FromUser: "gh_abc", Content: tc.content,
			}, now)
			if !utf8.Valid(out) {
				t.Fatalf("reply is not UTF-8: %q", out)
			}
			var r passiveReply
			if err := xml.Unmarshal(out, &r); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if r.ToUserName != "oUser]]>1" || r.FromUserName != "gh_abc" || r.CreateTime != now.Unix() || r.MsgType != "text" {
				t.Fatalf("reply=%+v", r)
			}
			if got, want := r.Content, tc.want; got != want {
				t.Fatalf("Content=%q, want %q", got, want)
			}
		})
	}
}

func BenchmarkSignature(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		callback.Signature("token1234567890", "1458864389", "2066297436")
	}
}

func BenchmarkDecrypt(b *testing.B) {
	v := vectorNamed(b, readVectors(b, localVectors), "easywechat_pamtest_decrypt")
	c := mustCipher(b, v.EncodingAESKey, v.AppID)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Decrypt(v.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}
