package fakewechat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/workers/fakewechat"
)

const (
	appID     = "wxfake"
	appSecret = "fakesecret"
)

type answer struct {
	Status      int
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Ticket      string `json:"ticket"`
	OpenID      string `json:"openid"`
	Snapshot    int    `json:"is_snapshotuser"`
}

// MustServer serves a fake on loopback and returns it with its URL.
func MustServer(tb testing.TB, cfg fakewechat.Config) (*fakewechat.Server, string) {
	tb.Helper()
	s := fakewechat.New(cfg)
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return s, srv.URL
}

func do(tb testing.TB, method, u, body string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	a := answer{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &a); err != nil {
			tb.Fatalf("answer %q: %v", data, err)
		}
	}
	return a
}

func token(tb testing.TB, base string) string {
	tb.Helper()
	a := do(tb, "GET", base+"/cgi-bin/token?grant_type=client_credential&appid="+appID+"&secret="+appSecret, "")
	if a.AccessToken == "" {
		tb.Fatalf("no token: %+v", a)
	}
	return a.AccessToken
}

func TestToken(t *testing.T) {
	_, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret, TokenTTL: time.Hour})
	tests := []struct {
		name  string
		query string
		code  int
	}{
		{name: "ok", query: "grant_type=client_credential&appid=" + appID + "&secret=" + appSecret},
		{name: "bad appid", query: "grant_type=client_credential&appid=wxother&secret=" + appSecret, code: 40013},
		{name: "bad secret", query: "grant_type=client_credential&appid=" + appID + "&secret=nope", code: 40125},
		{name: "no appid", query: "grant_type=client_credential&secret=" + appSecret, code: 41002},
		{name: "no secret", query: "grant_type=client_credential&appid=" + appID, code: 41004},
		{name: "bad grant", query: "grant_type=password&appid=" + appID + "&secret=" + appSecret, code: 40002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "GET", base+"/cgi-bin/token?"+tt.query, "")
			if got, want := a.ErrCode, tt.code; got != want {
				t.Fatalf("errcode=%d (%s), want %d", got, a.ErrMsg, want)
			}
			if tt.code == 0 && (a.AccessToken == "" || a.ExpiresIn != 3600) {
				t.Fatalf("answer=%+v", a)
			}
		})
	}
}

func TestTokenChecks(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret, Now: clock})
	ticket := func(tok string) answer {
		return do(t, "GET", base+"/cgi-bin/ticket/getticket?type=jsapi&access_token="+url.QueryEscape(tok), "")
	}

	tok := token(t, base)
	if a := ticket(tok); a.ErrCode != 0 || a.Ticket == "" || a.ErrMsg != "ok" {
		t.Fatalf("ticket answer=%+v", a)
	}
	if got, want := ticket("").ErrCode, 41001; got != want {
		t.Fatalf("missing token: errcode=%d, want %d", got, want)
	}
	if got, want := ticket("unknown").ErrCode, 40001; got != want {
		t.Fatalf("unknown token: errcode=%d, want %d", got, want)
	}

	s.RevokeTokens()
	if got, want := ticket(tok).ErrCode, 40001; got != want {
		t.Fatalf("revoked token: errcode=%d, want %d", got, want)
	}
	tok2 := token(t, base)
	if got, want := ticket(tok2).ErrCode, 0; got != want {
		t.Fatalf("new token: errcode=%d, want %d", got, want)
	}
	mu.Lock()
	now = now.Add(7200 * time.Second)
	mu.Unlock()
	if got, want := ticket(tok2).ErrCode, 42001; got != want {
		t.Fatalf("expired token: errcode=%d, want %d", got, want)
	}
	tok3 := token(t, base)
	s.ExpireTokens()
	if got, want := ticket(tok3).ErrCode, 42001; got != want {
		t.Fatalf("ExpireTokens: errcode=%d, want %d", got, want)
	}
}

func TestFailNextAndCalls(t *testing.T) {
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret})
	tokURL := base + "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret

	s.FailNext("cgi-bin/token", 45009, 2) // the leading slash is optional
	for i := range 2 {
		if a := do(t, "GET", tokURL, ""); a.ErrCode != 45009 || a.ErrMsg == "" {
			t.Fatalf("call %d: answer=%+v, want errcode 45009", i, a)
		}
	}
	if a := do(t, "GET", tokURL, ""); a.ErrCode != 0 {
		t.Fatalf("third call: answer=%+v, want success", a)
	}

	s.FailNext("/cgi-bin/token", 503, 1)
	if got, want := do(t, "GET", tokURL, "").Status, 503; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	s.FailNext("/cgi-bin/token", 40001, 5)
	s.FailNext("/cgi-bin/token", 0, 0) // cleared
	if a := do(t, "GET", tokURL, ""); a.ErrCode != 0 {
		t.Fatalf("after clearing: answer=%+v", a)
	}
	if got, want := s.Calls("/cgi-bin/token"), 5; got != want {
		t.Fatalf("calls=%d, want %d", got, want)
	}
	if got, want := s.Calls("/sns/userinfo"), 0; got != want {
		t.Fatalf("calls=%d, want %d", got, want)
	}
}

func TestSetDelay(t *testing.T) {
	s, base := MustServer(t, fakewechat.Config{})
	s.SetDelay("/cgi-bin/token", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/cgi-bin/token?grant_type=client_credential&appid=a&secret=b", nil)
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("no timeout")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("took %v", d)
	}
	s.SetDelay("/cgi-bin/token", 0)
	// An empty AppID and AppSecret accept any.
	if a := do(t, "GET", base+"/cgi-bin/token?grant_type=client_credential&appid=a&secret=b", ""); a.AccessToken == "" {
		t.Fatalf("answer=%+v", a)
	}
}

func TestSetDelayCallGivenUpHasNoEffect(t *testing.T) {
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret})
	send := base + "/cgi-bin/message/custom/send?access_token=" + url.QueryEscape(token(t, base))
	body := `{"touser":"oA","msgtype":"text","text":{"content":"x"}}`
	s.SetDelay("/cgi-bin/message/custom/send", 300*time.Millisecond)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := client.Post(send, "application/json", strings.NewReader(body)); err == nil {
		t.Fatal("no timeout")
	}
	s.SetDelay("/cgi-bin/message/custom/send", 0)
	if a := do(t, "POST", send, body); a.ErrCode != 0 {
		t.Fatalf("answer=%+v", a)
	}
	time.Sleep(400 * time.Millisecond) // past the first call's delay
	if got, want := len(s.Sent()), 1; got != want {
		t.Fatalf("sent=%d, want %d (the call given up must not send)", got, want)
	}
}

func TestFailForAndCallTimes(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret, Now: clock})
	tokURL := base + "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret

	s.FailFor("/cgi-bin/token", 500, 10*time.Second)
	for i := range 3 {
		if got, want := do(t, "GET", tokURL, "").Status, 500; got != want {
			t.Fatalf("call %d: status=%d, want %d", i, got, want)
		}
		advance(3 * time.Second)
	}
	advance(time.Second) // the outage is over
	if a := do(t, "GET", tokURL, ""); a.ErrCode != 0 || a.AccessToken == "" {
		t.Fatalf("after the outage: answer=%+v", a)
	}
	s.FailFor("/cgi-bin/token", -1, time.Minute)
	s.FailFor("/cgi-bin/token", 0, 0) // cleared
	if a := do(t, "GET", tokURL, ""); a.ErrCode != 0 {
		t.Fatalf("after clearing: answer=%+v", a)
	}

	times := s.CallTimes("cgi-bin/token")
	if got, want := len(times), s.Calls("/cgi-bin/token"); got != want {
		t.Fatalf("call times=%d, want %d (one per call)", got, want)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []time.Time{start, start.Add(3 * time.Second), start.Add(6 * time.Second), start.Add(10 * time.Second), start.Add(10 * time.Second)} {
		if !times[i].Equal(want) {
			t.Fatalf("call %d at %v, want %v", i, times[i], want)
		}
	}
	if got := s.CallTimes("/sns/userinfo"); len(got) != 0 {
		t.Fatalf("call times=%v, want none", got)
	}
}

func TestCustomSendAndMenu(t *testing.T) {
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret})
	tok := token(t, base)
	send := base + "/cgi-bin/message/custom/send?access_token=" + url.QueryEscape(tok)
	menu := base + "/cgi-bin/menu/create?access_token=" + url.QueryEscape(tok)
	tests := []struct {
		name   string
		method string
		url    string
		body   string
		code   int
	}{
		{name: "send ok", method: "POST", url: send, body: `{"touser":"oA","msgtype":"text","text":{"content":"你好"}}`},
		{name: "send get", method: "GET", url: send, code: 44002},
		{name: "send not json", method: "POST", url: send, body: `{`, code: 47001},
		{name: "send no touser", method: "POST", url: send, body: `{"msgtype":"text","text":{"content":"x"}}`, code: 40003},
		{name: "send bad token", method: "POST", url: base + "/cgi-bin/message/custom/send?access_token=x", body: `{}`, code: 40001},
		{name: "menu ok", method: "POST", url: menu, body: `{"button":[{"type":"click","name":"a","key":"k"}]}`},
		{name: "menu empty", method: "POST", url: menu, body: `{"button":[]}`, code: 40016},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := do(t, tt.method, tt.url, tt.body).ErrCode, tt.code; got != want {
				t.Fatalf("errcode=%d, want %d", got, want)
			}
		})
	}
	sent := s.Sent()
	if got, want := len(sent), 1; got != want {
		t.Fatalf("sent=%d, want %d", got, want)
	}
	if got, want := sent[0], (fakewechat.Message{ToUser: "oA", MsgType: "text", Content: "你好", Raw: sent[0].Raw}); got.ToUser != want.ToUser || got.Content != want.Content || got.MsgType != want.MsgType {
		t.Fatalf("sent=%+v, want %+v", got, want)
	}
	if got, want := string(s.Menu()), `{"button":[{"type":"click","name":"a","key":"k"}]}`; got != want {
		t.Fatalf("menu=%s, want %s", got, want)
	}
}

func TestAuthorizeAndExchange(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, base := MustServer(t, fakewechat.Config{AppID: appID, AppSecret: appSecret, Now: clock})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	exchange := func(code string) answer {
		return do(t, "GET", base+"/sns/oauth2/access_token?appid="+appID+"&secret="+appSecret+"&code="+url.QueryEscape(code)+"&grant_type=authorization_code", "")
	}

	pageTests := []struct {
		name   string
		query  string
		status int
	}{
		{name: "ok", query: "appid=" + appID + "&redirect_uri=https%3A%2F%2Fa.example%2Fcb&response_type=code&scope=snsapi_base&state=s1", status: 302},
		{name: "bad appid", query: "appid=wxother&redirect_uri=https%3A%2F%2Fa.example%2Fcb&response_type=code&scope=snsapi_base&state=s1", status: 400},
		{name: "bad scope", query: "appid=" + appID + "&redirect_uri=https%3A%2F%2Fa.example%2Fcb&response_type=code&scope=snsapi_all&state=s1", status: 400},
		{name: "relative redirect", query: "appid=" + appID + "&redirect_uri=%2Fcb&response_type=code&scope=snsapi_base&state=s1", status: 400},
	}
	for _, tt := range pageTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := noRedirect.Get(base + "/connect/oauth2/authorize?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if tt.status != 302 {
				return
			}
			u, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.Scheme+"://"+u.Host+u.Path, "https://a.example/cb"; got != want {
				t.Fatalf("redirect=%s, want %s", got, want)
			}
			if got, want := u.Query().Get("state"), "s1"; got != want {
				t.Fatalf("state=%q, want %q", got, want)
			}
			a := exchange(u.Query().Get("code"))
			if got, want := a.OpenID, fakewechat.DefaultOpenID; got != want {
				t.Fatalf("openid=%q, want %q (%+v)", got, want, a)
			}
		})
	}

	code := s.IssueCode("oX", true)
	if a := exchange(code); a.OpenID != "oX" || a.Snapshot != 1 {
		t.Fatalf("answer=%+v", a)
	}
	if got, want := exchange(code).ErrCode, 40163; got != want {
		t.Fatalf("reuse: errcode=%d, want %d", got, want)
	}
	if got, want := exchange("nosuch").ErrCode, 40029; got != want {
		t.Fatalf("unknown: errcode=%d, want %d", got, want)
	}
	if got, want := exchange("").ErrCode, 41008; got != want {
		t.Fatalf("missing: errcode=%d, want %d", got, want)
	}
	code = s.IssueCode("oY", false)
	mu.Lock()
	now = now.Add(5*time.Minute + time.Second)
	mu.Unlock()
	if got, want := exchange(code).ErrCode, 40029; got != want {
		t.Fatalf("expired: errcode=%d, want %d", got, want)
	}
}
