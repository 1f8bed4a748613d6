package reqgen

import (
	"bufio"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
)

const (
	testToken  = "benchtoken"
	testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testAppID  = "wxbenchtest"
)

func TestNextIsDistinctAndSigned(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, mode := range []string{ModePlain, ModeSafe} {
		for _, kind := range []string{KindLocation, KindScan} {
			g := &Generator{Token: testToken, AESKey: testAESKey, AppID: testAppID, Kind: kind, Mode: mode,
				Path: "/wechat/callback", Prefix: "t", OpenIDs: []string{"oA", "oB"}, Now: func() time.Time { return now }}
			if kind == KindLocation {
				g.OpenIDs = nil
			}
			nonces, plains := map[string]bool{}, map[string]bool{}
			c, err := callback.NewCipher(testAESKey, testAppID)
			if err != nil {
				t.Fatal(err)
			}
			for range 50 {
				r, err := g.Next()
				if err != nil {
					t.Fatal(err)
				}
				u, err := url.Parse(r.Target)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				ts, nonce := q.Get("timestamp"), q.Get("nonce")
				if ts != "1800000000" || q.Get("signature") != callback.Signature(testToken, ts, nonce) {
					t.Fatalf("%s/%s: bad timestamp or signature: %s", kind, mode, r.Target)
				}
				if nonces[nonce] {
					t.Fatalf("%s/%s: nonce %s reused", kind, mode, nonce)
				}
				nonces[nonce] = true
				plain := string(r.Body)
				if mode == ModeSafe {
					enc := regexp.MustCompile(`<Encrypt><!\[CDATA\[([^\]]+)\]\]>`).FindStringSubmatch(plain)
					if enc == nil || q.Get("encrypt_type") != "aes" || q.Get("msg_signature") != callback.Signature(testToken, ts, nonce, enc[1]) {
						t.Fatalf("safe body or msg_signature wrong: %s %s", r.Target, plain)
					}
					b, appid, err := c.Decrypt(enc[1])
					if err != nil || appid != testAppID {
						t.Fatalf("decrypt: %v, appid %q", err, appid)
					}
					plain = string(b)
				}
				if plains[plain] {
					t.Fatalf("%s/%s: event repeated: %s", kind, mode, plain)
				}
				plains[plain] = true
				want := "<Event><![CDATA[LOCATION]]></Event>"
				if kind == KindScan {
					want = "<ScanResult><![CDATA[CODE_128,WBt"
				}
				if !strings.Contains(plain, want) || !strings.Contains(plain, "<FromUserName><![CDATA["+q.Get("openid")+"]]>") {
					t.Fatalf("%s/%s: event %s", kind, mode, plain)
				}
			}
		}
	}
}

func TestNextRefusesUnknownKindAndMode(t *testing.T) {
	for _, g := range []*Generator{
		{Token: testToken, Kind: "text", Mode: ModePlain},
		{Token: testToken, Kind: KindLocation, Mode: "compat"},
		{Token: testToken, AESKey: "short", AppID: testAppID, Kind: KindLocation, Mode: ModeSafe},
	} {
		if _, err := g.Next(); err == nil {
			t.Errorf("kind %q mode %q key %q: no error", g.Kind, g.Mode, g.AESKey)
		}
	}
}

func TestWriteFileFormat(t *testing.T) {
	g := &Generator{Token: testToken, Kind: KindLocation, Mode: ModePlain, Path: "/cb", Prefix: "w"}
	var reqs []Request
	for range 3 {
		r, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	path := filepath.Join(t.TempDir(), "reqs.0")
	if err := WriteFile(path, "127.0.0.1", reqs); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for i, r := range reqs {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			t.Fatal(err)
		}
		want := "POST " + r.Target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		if !strings.HasPrefix(string(raw), want) || !strings.HasSuffix(string(raw), "\r\n\r\n"+string(r.Body)) ||
			!strings.Contains(string(raw), "Content-Length: "+strconv.Itoa(len(r.Body))+"\r\n") {
			t.Fatalf("request %d: %q", i, raw)
		}
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("trailing bytes after the last request")
	}
}
