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
	q := readPushQuery("signature=abc&timestamp=1700000000&nonce=42&openid=o1&encrypt_type=aes&msg_signature=def&echostr=%E4%BD%A0+x")
	if got, want := q, (pushQuery{"abc", "1700000000", "42", "aes", "def", "你 x"}); got != want {
		t.Fatalf("query=%q, want %q", got, want)
	}
	if got, want := readPushQuery("nonce=&nonce=second")[qNonce], ""; got != want {
		t.Fatalf("nonce=%q, want the first pair's %q", got, want)
	}
	if got, want := readPushQuery(strings.Repeat("x=1&", 31) + "nonce=n")[qNonce], "n"; got != want {
		t.Fatalf("nonce=%q, want %q (31 separators: read here)", got, want)
	}
	for _, raw := range []string{
		strings.Repeat("x=1&", 31) + "nonce=at the edge",
		strings.Repeat("x=1&", 32) + "nonce=past the edge",
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

// Under GODEBUG=urlmaxqueryparams=N, ParseQuery refuses a whole query of N
// or more pairs; readPushQuery leaves every query to it then.
func TestReadPushQueryUnderAParamsLimit(t *testing.T) {
	t.Setenv("GODEBUG", "urlmaxqueryparams=3")
	for _, raw := range []string{"signature=s&timestamp=1&nonce=n&echostr=e", "signature=s&nonce=n"} {
		checkQueryAgrees(t, raw)
	}
	if got := readPushQuery("signature=s&timestamp=1&nonce=n")[qSignature]; got != "" {
		t.Fatalf("signature=%q, want none: the query is over the limit", got)
	}
}
