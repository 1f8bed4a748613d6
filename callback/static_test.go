package callback_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"testing"

	"github.com/wxscan/wxscan/callback"
)

// jssdkSHA256 is the SHA-256 of package/index.original.js in weixin-js-sdk-1.6.0.tgz (see
// static/README.md): the vendored file must stay byte for byte what was taken.
const jssdkSHA256 = "4983ecf2fd4ca2903704a6d2ffc7aebce9c3b71dc93574dba1357eaad4bd3570"

func TestJSSDKServedVerbatim(t *testing.T) {
	file, err := os.ReadFile("static/jweixin-1.6.0.js")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(file); hex.EncodeToString(sum[:]) != jssdkSHA256 {
		t.Fatalf("static/jweixin-1.6.0.js has SHA-256 %x, want %s (the vendored file was changed)", sum, jssdkSHA256)
	}
	if callback.JSSDKPath != "/static/jweixin-1.6.0.js" {
		t.Fatalf("JSSDKPath = %q", callback.JSSDKPath)
	}

	env := MustPages(t, nil) // no workers: the file needs none
	resp, body := env.Do(t, http.MethodGet, callback.JSSDKPath, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", callback.JSSDKPath, resp.StatusCode)
	}
	if body != string(file) {
		t.Fatalf("GET %s: served %d bytes that differ from the %d-byte file", callback.JSSDKPath, len(body), len(file))
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/javascript; charset=utf-8",
		"Cache-Control":          "public, max-age=31536000, immutable",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	resp, body = env.Do(t, http.MethodHead, callback.JSSDKPath, "", nil)
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: status %d, %d body bytes", resp.StatusCode, len(body))
	}
	resp, _ = env.Do(t, http.MethodPost, callback.JSSDKPath, "application/javascript", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
	resp, _ = env.Do(t, http.MethodGet, "/static/jweixin-1.5.0.js", "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET another version: status %d, want 404", resp.StatusCode)
	}
}
