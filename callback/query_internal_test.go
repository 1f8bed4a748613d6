package callback

import (
	"net/url"
	"strings"
	"testing"
)

// checkQueryAgrees holds readPushQuery to url.ParseQuery and Values.Get.
func checkQueryAgrees(t *testing.T, raw string) {
	t.Helper()
	v, _ := url.ParseQuery(raw)
	got := readPushQuery(raw)
	for i, name := range queryNames {
		if want := v.Get(name); got[i] != want {
			t.Fatalf("query %q: %s=%q, want %q", raw, name, got[i], want)
		}
	}
}

func TestReadPushQuery(t *testing.T) {
	for _, raw := range []string{
		"",
		"signature=abc&timestamp=1700000000&nonce=42&openid=o1&encrypt_type=aes&msg_signature=def",
		"echostr=a%2Bb+c&signature=s",
		"nonce=&nonce=second",          // the first pair counts, empty or not
		"nonce=%zz&nonce=second",       // a bad escape is skipped
		"nonce=a;b&nonce=second",       // so is a pair with a semicolon
		"%6eonce=escaped&nonce=second", // keys unescape too
		"nonce",                        // a key without '='
		"&&nonce=x&&",
		"timestamp=1=2",
		strings.Repeat("x=1&", 40) + "nonce=many",
		strings.Repeat("x=1&", 20000) + "nonce=over the limit",
	} {
		checkQueryAgrees(t, raw)
	}
}

func FuzzReadPushQuery(f *testing.F) {
	f.Add("signature=abc&timestamp=1700000000&nonce=42&encrypt_type=aes&msg_signature=def&echostr=e")
	f.Add("nonce=%zz&nonce=a;b&%6eonce=+%41")
	f.Fuzz(checkQueryAgrees)
}
