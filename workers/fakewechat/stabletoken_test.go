package fakewechat_test

import (
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/workers/fakewechat"
)

func stableBody(force bool) string {
	b := `{"grant_type":"client_credential","appid":"` + appID + `","secret":"` + appSecret + `"`
	if force {
		b += `,"force_refresh":true`
	}
	return b + "}"
}

func TestStableTokenBadRequests(t *testing.T) {
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret})
	u := base + "/cgi-bin/stable_token"
	tests := []struct {
		name   string
		method string
		body   string
		code   int
	}{
		{name: "GET", method: "GET", body: "", code: 43002},
		{name: "GET with a body", method: "GET", body: stableBody(false), code: 43002},
		{name: "empty body", method: "POST", body: "", code: 44002},
		{name: "not JSON", method: "POST", body: "grant_type=client_credential", code: 47001},
		{name: "force_refresh not a bool", method: "POST", body: `{"grant_type":"client_credential","appid":"` + appID + `","secret":"` + appSecret + `","force_refresh":"yes"}`, code: 47001},
		{name: "bad grant", method: "POST", body: `{"grant_type":"password","appid":"` + appID + `","secret":"` + appSecret + `"}`, code: 40002},
		{name: "no appid", method: "POST", body: `{"grant_type":"client_credential","secret":"` + appSecret + `"}`, code: 41002},
		{name: "bad appid", method: "POST", body: `{"grant_type":"client_credential","appid":"wxother","secret":"` + appSecret + `"}`, code: 40013},
		{name: "no secret", method: "POST", body: `{"grant_type":"client_credential","appid":"` + appID + `"}`, code: 41004},
		{name: "bad secret", method: "POST", body: `{"grant_type":"client_credential","appid":"` + appID + `","secret":"nope","force_refresh":true}`, code: 40125},
		{name: "secret in the query only", method: "POST", body: `{"grant_type":"client_credential","appid":"` + appID + `"}`, code: 41004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := u
			if tt.name == "secret in the query only" {
				target += "?secret=" + url.QueryEscape(appSecret)
			}
			a := do(t, tt.method, target, tt.body)
			if got, want := a.ErrCode, tt.code; got != want {
				t.Fatalf("errcode=%d (%s), want %d", got, a.ErrMsg, want)
			}
			if a.AccessToken != "" {
				t.Fatalf("a refused request got a token: %+v", a)
			}
		})
	}
	if n, f := s.StableTokenCalls(); n != 0 || f != 0 {
		t.Fatalf("StableTokenCalls=(%d, %d) after refused requests only, want (0, 0)", n, f)
	}
	if got, want := s.Calls("/cgi-bin/stable_token"), len(tests); got != want {
		t.Fatalf("Calls=%d, want %d", got, want)
	}
}

func TestStableTokenModes(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret, Now: clock})
	stable := func(force bool) answer {
		t.Helper()
		a := do(t, "POST", base+"/cgi-bin/stable_token", stableBody(force))
		if a.ErrCode != 0 || a.AccessToken == "" {
			t.Fatalf("stable_token(force=%v): %+v", force, a)
		}
		return a
	}
	valid := func(tok string) int {
		return do(t, "GET", base+"/cgi-bin/ticket/getticket?type=jsapi&access_token="+url.QueryEscape(tok), "").ErrCode
	}

	// Normal mode answers the current token with its remaining life.
	a1 := stable(false)
	if got, want := a1.ExpiresIn, 7200; got != want {
		t.Fatalf("expires_in=%d, want %d", got, want)
	}
	advance(1000 * time.Second)
	a2 := stable(false)
	if a2.AccessToken != a1.AccessToken || a2.ExpiresIn != 6200 {
		t.Fatalf("second normal call=%+v, want %q with expires_in 6200", a2, a1.AccessToken)
	}

	// cgi-bin/token is separate: a token from it leaves the stable token alone.
	plain := token(t, base)
	if a := stable(false); a.AccessToken != a1.AccessToken || plain == a1.AccessToken {
		t.Fatalf("after cgi-bin/token: stable=%q plain=%q, want %q and another", a.AccessToken, plain, a1.AccessToken)
	}

	// Force refresh: a new token; the previous one answers 40001; normal mode now answers the new one.
	f := stable(true)
	if f.AccessToken == a1.AccessToken || f.ExpiresIn != 7200 {
		t.Fatalf("forced=%+v, want a new token for 7200 s", f)
	}
	if got, want := valid(a1.AccessToken), 40001; got != want {
		t.Fatalf("token replaced by a forced refresh: errcode=%d, want %d", got, want)
	}
	if got, want := valid(plain), 0; got != want {
		t.Fatalf("cgi-bin/token token after a forced refresh: errcode=%d, want %d", got, want)
	}
	if a := stable(false); a.AccessToken != f.AccessToken {
		t.Fatalf("normal after forced=%q, want %q", a.AccessToken, f.AccessToken)
	}

	// In its last 5 minutes normal mode answers a new token; the old one stays valid until it expires.
	advance(7200*time.Second - 5*time.Minute - time.Second)
	if a := stable(false); a.AccessToken != f.AccessToken || a.ExpiresIn != 301 {
		t.Fatalf("just before the last 5 minutes: %+v, want %q with 301 s", a, f.AccessToken)
	}
	advance(time.Second)
	r := stable(false)
	if r.AccessToken == f.AccessToken || r.ExpiresIn != 7200 {
		t.Fatalf("in the last 5 minutes: %+v, want a new token", r)
	}
	if got, want := valid(f.AccessToken), 0; got != want {
		t.Fatalf("old token before its expiry: errcode=%d, want %d", got, want)
	}
	advance(5 * time.Minute)
	if got, want := valid(f.AccessToken), 42001; got != want {
		t.Fatalf("old token after its expiry: errcode=%d, want %d", got, want)
	}

	// A revoked or expired current token is replaced in normal mode.
	s.RevokeTokens()
	rv := stable(false)
	if rv.AccessToken == r.AccessToken {
		t.Fatal("normal mode answered a revoked token")
	}
	s.ExpireTokens()
	if a := stable(false); a.AccessToken == rv.AccessToken {
		t.Fatal("normal mode answered an expired token")
	}

	if n, fc := s.StableTokenCalls(); n != 8 || fc != 1 {
		t.Fatalf("StableTokenCalls=(%d, %d), want (8, 1)", n, fc)
	}

	// Injected failures come before any check and are not counted as answered calls.
	s.FailNext("/cgi-bin/stable_token", 45009, 1)
	if a := do(t, "POST", base+"/cgi-bin/stable_token", stableBody(true)); a.ErrCode != 45009 {
		t.Fatalf("injected: %+v", a)
	}
	if n, fc := s.StableTokenCalls(); n != 8 || fc != 1 {
		t.Fatalf("StableTokenCalls after an injected failure=(%d, %d), want (8, 1)", n, fc)
	}
}
