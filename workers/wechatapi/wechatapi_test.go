package wechatapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/workers/fakewechat"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

const (
	appID     = "wxtest0001"
	appSecret = "s3cr3t-never-logged"

	pathToken  = "/cgi-bin/stable_token"
	pathTicket = "/cgi-bin/ticket/getticket"
	pathSend   = "/cgi-bin/message/custom/send"
)

// Cache is a TokenCache double: a map, plus optional funcs that replace the map.
type Cache struct {
	mu     sync.Mutex
	tokens map[string]cached
	Saves  int

	LoadTokenFn func(kind string) (string, time.Time, error)
}

type cached struct {
	value     string
	expiresAt time.Time
}

func (c *Cache) LoadToken(kind string) (string, time.Time, error) {
	if c.LoadTokenFn != nil {
		return c.LoadTokenFn(kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tokens[kind]
	return t.value, t.expiresAt, nil
}

func (c *Cache) SaveToken(kind, value string, expiresAt time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[string]cached{}
	}
	c.tokens[kind] = cached{value, expiresAt}
	c.Saves++
	return nil
}

// Clock is a settable time source shared by the client and the fake.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Env is a fake WeChat on loopback with a shared clock and token cache.
type Env struct {
	Fake  *fakewechat.Server
	URL   string
	Cache *Cache
	Clock *Clock

	mu        sync.Mutex
	tokenReqs []TokenRequest
}

// TokenRequest is a cgi-bin/stable_token request as the fake received it.
type TokenRequest struct {
	Method, RawQuery, ContentType string
	Body                          string
}

func MustEnv(tb testing.TB) *Env {
	tb.Helper()
	clock := &Clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	fake := fakewechat.New(fakewechat.Config{AppID: appID, AppSecret: appSecret, Now: clock.Now})
	e := &Env{Fake: fake, Cache: &Cache{}, Clock: clock}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathToken {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			e.mu.Lock()
			e.tokenReqs = append(e.tokenReqs, TokenRequest{r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), string(body)})
			e.mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// TokenRequests returns the cgi-bin/stable_token requests received so far.
func (e *Env) TokenRequests() []TokenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.tokenReqs)
}

// Forced reports whether a stable_token request body asks for force_refresh (and fails tb when the
// body is not the documented JSON).
func Forced(tb testing.TB, r TokenRequest) bool {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		tb.Fatalf("stable_token body %q: %v", r.Body, err)
	}
	f, ok := body["force_refresh"]
	if !ok {
		return false
	}
	if f != true {
		tb.Fatalf("force_refresh=%v in %q, want true or absent", f, r.Body)
	}
	return true
}

// MustClient returns a client of e; mods adjust its config.
func (e *Env) MustClient(tb testing.TB, mods ...func(*wechatapi.Config)) *wechatapi.Client {
	tb.Helper()
	cfg := wechatapi.Config{BaseURL: e.URL, AppID: appID, AppSecret: appSecret, Cache: e.Cache, Now: e.Clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := wechatapi.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  wechatapi.Config
		want string // substring of the error; empty: no error
	}{
		{name: "ok", cfg: wechatapi.Config{AppID: "wx1", AppSecret: "s"}},
		{name: "no appid", cfg: wechatapi.Config{AppSecret: "s"}, want: "WXSCAN_APPID"},
		{name: "no secret", cfg: wechatapi.Config{AppID: "wx1"}, want: "WXSCAN_APPSECRET"},
		{name: "bad base", cfg: wechatapi.Config{AppID: "wx1", AppSecret: "s", BaseURL: "api.weixin.qq.com"}, want: "WXSCAN_API_BASE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wechatapi.New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestAccessToken_Cached(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	c := e.MustClient(t)
	tok1, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok1 == "" || tok1 != tok2 {
		t.Fatalf("tokens %q and %q, want one non-empty token", tok1, tok2)
	}

	// A new client sharing the cache (a restart) does not refresh.
	tok3, err := e.MustClient(t).AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok3, tok1; got != want {
		t.Fatalf("after restart token=%q, want %q", got, want)
	}
	if got, want := e.Fake.Calls(pathToken), 1; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
	if got, want := c.Stats().TokenRefreshes, 1; got != want {
		t.Fatalf("refreshes=%d, want %d", got, want)
	}

	// Without the cache, a new client refreshes.
	if _, err := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.Cache = nil }).AccessToken(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Fake.Calls(pathToken), 2; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
}

func TestAccessToken_CacheExpiredOrFailing(t *testing.T) {
	tests := []struct {
		name string
		load func(kind string) (string, time.Time, error)
	}{
		{name: "expired", load: func(string) (string, time.Time, error) {
			return "old", time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), nil
		}},
		{name: "error", load: func(string) (string, time.Time, error) {
			return "", time.Time{}, errors.New("disk on fire")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnv(t)
			e.Cache.LoadTokenFn = tt.load
			tok, err := e.MustClient(t).AccessToken(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tok == "old" {
				t.Fatal("used the expired cached token")
			}
			if got, want := e.Fake.Calls(pathToken), 1; got != want {
				t.Fatalf("token calls=%d, want %d", got, want)
			}
		})
	}
}

func TestAccessToken_Concurrent(t *testing.T) {
	e := MustEnv(t)
	e.Fake.SetDelay(pathToken, 50*time.Millisecond)
	c := e.MustClient(t)
	const n = 50
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = c.AccessToken(context.Background()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if toks[i] != toks[0] {
			t.Fatalf("token %d=%q, want %q", i, toks[i], toks[0])
		}
	}
	if got, want := e.Fake.Calls(pathToken), 1; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
}

func TestAccessToken_CallerGivesUp(t *testing.T) {
	e := MustEnv(t)
	e.Fake.SetDelay(pathToken, 200*time.Millisecond)
	c := e.MustClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.AccessToken(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want deadline exceeded", err)
	}
	// The refresh went on; a patient caller gets its result without a second refresh.
	if _, err := c.AccessToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Fake.Calls(pathToken), 1; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
}

func TestAccessToken_RefreshAhead(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()
	tok1, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(7200*time.Second - 5*time.Minute - time.Second)
	if tok, err := c.AccessToken(ctx); err != nil || tok != tok1 {
		t.Fatalf("just before the refresh window: token=%q err=%v, want %q", tok, err, tok1)
	}
	e.Clock.Add(2 * time.Second)
	tok2, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok1 {
		t.Fatal("token not refreshed inside the refresh window")
	}
	if got, want := e.Fake.Calls(pathToken), 2; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
	st := c.Stats()
	if got, want := st.TokenRefreshes, 2; got != want {
		t.Fatalf("refreshes=%d, want %d", got, want)
	}
	if got, want := st.LastRefresh, e.Clock.Now(); !got.Equal(want) {
		t.Fatalf("last refresh=%v, want %v", got, want)
	}
	if got, want := e.Cache.tokens[wechatapi.KindAccessToken].value, tok2; got != want {
		t.Fatalf("cached=%q, want %q", got, want)
	}
}

func TestAccessToken_EarlyRefreshFails(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()
	tok1, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(7200*time.Second - time.Minute)
	e.Fake.FailNext(pathToken, -1, 1)
	if tok, err := c.AccessToken(ctx); err != nil || tok != tok1 {
		t.Fatalf("token=%q err=%v, want the still valid %q", tok, err, tok1)
	}
}

func TestAccessToken_BadCredentials(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		secret string
		code   int
	}{
		{name: "bad appid", id: "wxwrong", secret: appSecret, code: wechatapi.CodeInvalidAppID},
		{name: "bad secret", id: appID, secret: "wrong", code: wechatapi.CodeInvalidAppSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnv(t)
			c := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.AppID, cfg.AppSecret = tt.id, tt.secret })
			err := c.SendText(context.Background(), "oUser", "hi")
			if !wechatapi.IsCode(err, tt.code) {
				t.Fatalf("err=%v, want errcode %d", err, tt.code)
			}
			if !wechatapi.Permanent(err) {
				t.Fatalf("err=%v not permanent", err)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestSendText(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	if err := c.SendText(context.Background(), "oUser1", "已记录 6901234567892 <3 & more"); err != nil {
		t.Fatal(err)
	}
	sent := e.Fake.Sent()
	if got, want := len(sent), 1; got != want {
		t.Fatalf("sent=%d, want %d", got, want)
	}
	if got, want := sent[0].ToUser, "oUser1"; got != want {
		t.Fatalf("touser=%q, want %q", got, want)
	}
	if got, want := sent[0].MsgType, "text"; got != want {
		t.Fatalf("msgtype=%q, want %q", got, want)
	}
	if got, want := sent[0].Content, "已记录 6901234567892 <3 & more"; got != want {
		t.Fatalf("content=%q, want %q", got, want)
	}
}

func TestSendText_InvalidTokenRetried(t *testing.T) {
	// When WeChat still holds the rejected token (an injected errcode), normal mode answers it again and
	// the client forces a refresh; when WeChat has a newer one (revoked, expired), normal mode answers
	// that and nothing is forced.
	tests := []struct {
		name   string
		inject func(*fakewechat.Server)
		forced bool
	}{
		{name: "40001", inject: func(f *fakewechat.Server) { f.FailNext(pathSend, 40001, 1) }, forced: true},
		{name: "40014", inject: func(f *fakewechat.Server) { f.FailNext(pathSend, 40014, 1) }, forced: true},
		{name: "42001", inject: func(f *fakewechat.Server) { f.FailNext(pathSend, 42001, 1) }, forced: true},
		{name: "revoked", inject: (*fakewechat.Server).RevokeTokens},
		{name: "expired", inject: (*fakewechat.Server).ExpireTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnv(t)
			c := e.MustClient(t)
			ctx := context.Background()
			tok1, err := c.AccessToken(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tt.inject(e.Fake)
			if err := c.SendText(ctx, "oUser", "hi"); err != nil {
				t.Fatal(err)
			}
			wantNormal, wantForced := 2, 0
			if tt.forced {
				wantForced = 1
			}
			if n, f := e.Fake.StableTokenCalls(); n != wantNormal || f != wantForced {
				t.Fatalf("stable_token calls (normal, forced)=(%d, %d), want (%d, %d)", n, f, wantNormal, wantForced)
			}
			reqs := e.TokenRequests()
			if got, want := Forced(t, reqs[len(reqs)-1]), tt.forced; got != want {
				t.Fatalf("last stable_token request forced=%v, want %v", got, want)
			}
			if got, want := c.Stats().ForceRefreshCalls, wantForced; got != want {
				t.Fatalf("Stats.ForceRefreshCalls=%d, want %d", got, want)
			}
			if got, want := e.Fake.Calls(pathSend), 2; got != want {
				t.Fatalf("send calls=%d, want %d", got, want)
			}
			if got, want := len(e.Fake.Sent()), 1; got != want {
				t.Fatalf("sent=%d, want %d", got, want)
			}
			if tok2, _ := c.AccessToken(ctx); tok2 == tok1 {
				t.Fatal("the failed token is still in use")
			}
			if got, want := c.Stats().ForcedRefreshes, 1; got != want {
				t.Fatalf("forced refreshes=%d, want %d", got, want)
			}
		})
	}
}

func TestSendText_ForcedRefreshRateLimited(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()

	e.Fake.FailNext(pathSend, 40001, 1)
	if err := c.SendText(ctx, "oUser", "one"); err != nil {
		t.Fatal(err)
	}
	if n, f := e.Fake.StableTokenCalls(); n != 2 || f != 1 {
		t.Fatalf("stable_token calls (normal, forced)=(%d, %d), want (2, 1)", n, f)
	}
	reqs := e.TokenRequests()
	if !Forced(t, reqs[2]) || Forced(t, reqs[0]) || Forced(t, reqs[1]) {
		t.Fatalf("requests %+v, want only the third forced", reqs)
	}
	e.Clock.Add(10 * time.Second)
	e.Fake.FailNext(pathSend, 40001, 1)
	err := c.SendText(ctx, "oUser", "two")
	if !wechatapi.IsCode(err, 40001) {
		t.Fatalf("err=%v, want errcode 40001", err)
	}
	if wechatapi.Permanent(err) {
		t.Fatalf("err=%v is permanent, want transient", err)
	}
	if got, want := e.Fake.Calls(pathToken), 3; got != want {
		t.Fatalf("token calls=%d, want %d (second forced refresh refused)", got, want)
	}

	// Once MinForcedRefresh has passed, a forced refresh is allowed again.
	e.Clock.Add(21 * time.Second)
	e.Fake.FailNext(pathSend, 40001, 1)
	if err := c.SendText(ctx, "oUser", "three"); err != nil {
		t.Fatal(err)
	}
	if n, f := e.Fake.StableTokenCalls(); n != 3 || f != 2 {
		t.Fatalf("stable_token calls (normal, forced)=(%d, %d), want (3, 2)", n, f)
	}
	if got, want := c.Stats().ForceRefreshCalls, 2; got != want {
		t.Fatalf("Stats.ForceRefreshCalls=%d, want %d", got, want)
	}
}

// A call that failed with a token another call has already replaced must not drop the new token.
func TestSendText_CompareAndDrop(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()
	if _, err := c.AccessToken(ctx); err != nil {
		t.Fatal(err)
	}

	// X sends with token A and is held by the fake; meanwhile A is revoked and Y replaces it.
	e.Fake.SetDelay(pathSend, 500*time.Millisecond)
	errX := make(chan error, 1)
	go func() { errX <- c.SendText(ctx, "oX", "x") }()
	for e.Fake.Calls(pathSend) < 1 {
		time.Sleep(time.Millisecond)
	}
	e.Fake.SetDelay(pathSend, 0)
	e.Fake.RevokeTokens()
	if err := c.SendText(ctx, "oY", "y"); err != nil {
		t.Fatalf("Y: %v", err)
	}
	// X now sees 40001 for A; it must retry with B rather than drop B (which the rate limit would refuse).
	if err := <-errX; err != nil {
		t.Fatalf("X: %v", err)
	}
	if got, want := e.Fake.Calls(pathToken), 2; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
	if got, want := len(e.Fake.Sent()), 2; got != want {
		t.Fatalf("sent=%d, want %d", got, want)
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*fakewechat.Server)
		timeout   time.Duration // client timeout; 0: default
		code      int           // expected errcode; 0: not an errcode
		permanent bool
	}{
		{name: "45015 reply window", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, 45015, 1) }, code: 45015, permanent: true},
		{name: "40003 bad openid", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, 40003, 1) }, code: 40003, permanent: true},
		{name: "43004 not subscribed", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, 43004, 1) }, code: 43004, permanent: true},
		{name: "-1 system busy", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, -1, 1) }, code: -1},
		{name: "45009 daily quota", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, 45009, 1) }, code: 45009},
		{name: "http 503", setup: func(f *fakewechat.Server) { f.FailNext(pathSend, 503, 1) }},
		{name: "http 500 on token", setup: func(f *fakewechat.Server) { f.FailNext(pathToken, 500, 1) }},
		{name: "timeout", setup: func(f *fakewechat.Server) { f.SetDelay(pathSend, time.Second) }, timeout: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnv(t)
			tt.setup(e.Fake)
			c := e.MustClient(t, func(cfg *wechatapi.Config) {
				if tt.timeout > 0 {
					cfg.HTTPClient = &http.Client{Timeout: tt.timeout}
				}
			})
			err := c.SendText(context.Background(), "oUser", "hi")
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := wechatapi.Permanent(err), tt.permanent; got != want {
				t.Fatalf("Permanent(%v)=%v, want %v", err, got, want)
			}
			if tt.code != 0 && !wechatapi.IsCode(err, tt.code) {
				t.Fatalf("err=%v, want errcode %d", err, tt.code)
			}
			if !strings.HasPrefix(err.Error(), "wechatapi: send text: ") {
				t.Fatalf("err=%q, want the package and action first", err)
			}
			if strings.Contains(err.Error(), "access_token=") || strings.Contains(err.Error(), appSecret) {
				t.Fatalf("err=%q holds a credential", err)
			}
		})
	}

	t.Run("plain errors", func(t *testing.T) {
		if wechatapi.Permanent(nil) || wechatapi.Permanent(context.Canceled) || wechatapi.Permanent(errors.New("x")) {
			t.Fatal("Permanent is true for a non-WeChat error")
		}
	})
}

func TestTimeoutIsNetError(t *testing.T) {
	e := MustEnv(t)
	e.Fake.SetDelay(pathToken, time.Second)
	c := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
	_, err := c.AccessToken(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err=%v, want a net.Error timeout", err)
	}
	if strings.Contains(err.Error(), appSecret) {
		t.Fatalf("err=%q holds the secret", err)
	}
}

func TestNetworkErrorHidesSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := wechatapi.New(wechatapi.Config{BaseURL: "http://" + addr, AppID: appID, AppSecret: appSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AccessToken(context.Background())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if strings.Contains(err.Error(), appSecret) {
		t.Fatalf("err=%q holds the secret", err)
	}
	if wechatapi.Permanent(err) {
		t.Fatalf("err=%v is permanent", err)
	}
}

// authorize runs the fake authorize page and returns the redirect target.
func authorize(tb testing.TB, e *Env, query string) *url.URL {
	tb.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(e.URL + "/connect/oauth2/authorize?" + query)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusFound; got != want {
		tb.Fatalf("authorize status=%d, want %d", got, want)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestOAuthExchange(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()

	t.Run("authorize page", func(t *testing.T) {
		q := strings.TrimPrefix(wechatapi.AuthorizeURL("", appID, "http://staff.example/oauth/callback?x=1",
			wechatapi.ScopeBase, "st4te"), "/connect/oauth2/authorize?")
		u := authorize(t, e, strings.TrimSuffix(q, "#wechat_redirect")+"&openid=oAlice")
		if got, want := u.Host+u.Path, "staff.example/oauth/callback"; got != want {
			t.Fatalf("redirect=%q, want %q", got, want)
		}
		if got, want := u.Query().Get("state"), "st4te"; got != want {
			t.Fatalf("state=%q, want %q", got, want)
		}
		if got, want := u.Query().Get("x"), "1"; got != want {
			t.Fatalf("x=%q, want %q", got, want)
		}
		tok, err := c.OAuthExchange(ctx, u.Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tok.OpenID, "oAlice"; got != want {
			t.Fatalf("openid=%q, want %q", got, want)
		}
		if got, want := tok.Scope, wechatapi.ScopeBase; got != want {
			t.Fatalf("scope=%q, want %q", got, want)
		}
		if tok.IsSnapshotUser || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 7200*time.Second {
			t.Fatalf("token=%+v", tok)
		}
	})

	tests := []struct {
		name     string
		code     func() string
		wantCode int
		openid   string
		snapshot bool
	}{
		{name: "ok", code: func() string { return e.Fake.IssueCode("oBob", false) }, openid: "oBob"},
		{name: "snapshot", code: func() string { return e.Fake.IssueCode("oSnap", true) }, openid: "oSnap", snapshot: true},
		{name: "default user", code: func() string {
			return authorize(t, e, "appid="+appID+"&redirect_uri=http%3A%2F%2Fx.example%2Fcb&response_type=code&scope=snsapi_base&state=s").Query().Get("code")
		}, openid: fakewechat.DefaultOpenID},
		{name: "snapshot via page", code: func() string {
			return authorize(t, e, "appid="+appID+"&redirect_uri=http%3A%2F%2Fx.example%2Fcb&response_type=code&scope=snsapi_base&state=s&snapshot=1").Query().Get("code")
		}, openid: fakewechat.DefaultOpenID, snapshot: true},
		{name: "reused", code: func() string {
			code := e.Fake.IssueCode("oBob", false)
			if _, err := c.OAuthExchange(ctx, code); err != nil {
				t.Fatal(err)
			}
			return code
		}, wantCode: wechatapi.CodeCodeUsed},
		{name: "invalid", code: func() string { return "nosuchcode" }, wantCode: wechatapi.CodeInvalidCode},
		{name: "expired", code: func() string {
			code := e.Fake.IssueCode("oBob", false)
			e.Clock.Add(5*time.Minute + time.Second)
			return code
		}, wantCode: wechatapi.CodeInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := c.OAuthExchange(ctx, tt.code())
			if tt.wantCode != 0 {
				if !wechatapi.IsCode(err, tt.wantCode) {
					t.Fatalf("err=%v, want errcode %d", err, tt.wantCode)
				}
				if !wechatapi.Permanent(err) {
					t.Fatalf("err=%v not permanent", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tok.OpenID, tt.openid; got != want {
				t.Fatalf("openid=%q, want %q", got, want)
			}
			if got, want := tok.IsSnapshotUser, tt.snapshot; got != want {
				t.Fatalf("snapshot=%v, want %v", got, want)
			}
		})
	}
	if got, want := e.Fake.Calls(pathToken), 0; got != want {
		t.Fatalf("token calls=%d, want %d (OAuth needs no access token)", got, want)
	}
}

func TestOAuthRefreshAndUserInfo(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()
	u := authorize(t, e, "appid="+appID+"&redirect_uri=http%3A%2F%2Fx.example%2Fcb&response_type=code&scope=snsapi_userinfo&state=s&openid=oCarol")
	tok, err := c.OAuthExchange(ctx, u.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.UserInfo(ctx, tok.AccessToken, tok.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.OpenID, "oCarol"; got != want {
		t.Fatalf("openid=%q, want %q", got, want)
	}

	tok2, err := c.OAuthRefresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.OpenID != "oCarol" {
		t.Fatalf("refreshed=%+v", tok2)
	}
	if _, err := c.UserInfo(ctx, tok2.AccessToken, tok2.OpenID); err != nil {
		t.Fatal(err)
	}

	if _, err := c.OAuthRefresh(ctx, "nosuch"); !wechatapi.IsCode(err, 40030) {
		t.Fatalf("err=%v, want errcode 40030", err)
	}
	// A bad web-page token is the user's problem: it must not touch the account's access token.
	if _, err := c.UserInfo(ctx, "nosuch", "oCarol"); !wechatapi.IsCode(err, 40001) {
		t.Fatalf("err=%v, want errcode 40001", err)
	}
	if got, want := c.Stats().ForcedRefreshes, 0; got != want {
		t.Fatalf("forced refreshes=%d, want %d", got, want)
	}
	base, err := c.OAuthExchange(ctx, e.Fake.IssueCode("oDan", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserInfo(ctx, base.AccessToken, base.OpenID); !wechatapi.IsCode(err, 48001) {
		t.Fatalf("snsapi_base user info: err=%v, want errcode 48001", err)
	}
}

func TestAuthorizeURL(t *testing.T) {
	got := wechatapi.AuthorizeURL("https://open.weixin.qq.com/", "wx520c15f417810387",
		"https://staff.example.com/oauth/callback?a=1&b=2", wechatapi.ScopeBase, "Xy9z")
	want := "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387" +
		"&redirect_uri=https%3A%2F%2Fstaff.example.com%2Foauth%2Fcallback%3Fa%3D1%26b%3D2" +
		"&response_type=code&scope=snsapi_base&state=Xy9z#wechat_redirect"
	if got != want {
		t.Fatalf("url=\n%s\nwant\n%s", got, want)
	}
}

func TestJSSDKSignature(t *testing.T) {
	const ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
	tests := []struct {
		name string
		url  string
	}{
		{name: "official vector", url: "http://mp.weixin.qq.com?params=value"},
		{name: "fragment stripped", url: "http://mp.weixin.qq.com?params=value#xxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := wechatapi.JSSDKSignature(ticket, "Wm3WZYTPz0wzccnW", 1414587457, tt.url),
				"0f9de62fce790f9a083d5c99e95740ceb90c27ed"; got != want {
				t.Fatalf("signature=%s, want %s", got, want)
			}
		})
	}
}

func TestJSConfig(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	ctx := context.Background()
	const page = "https://staff.example.com/scan?x=1#top"
	cfg1, err := c.JSConfig(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	cfg2, err := c.JSConfig(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if cfg1.NonceStr == cfg2.NonceStr {
		t.Fatal("nonce reused")
	}
	ticket, err := c.JSAPITicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg1.Signature, wechatapi.JSSDKSignature(ticket, cfg1.NonceStr, cfg1.Timestamp, "https://staff.example.com/scan?x=1"); got != want {
		t.Fatalf("signature=%s, want %s", got, want)
	}
	if got, want := cfg1.AppID, appID; got != want {
		t.Fatalf("appId=%q, want %q", got, want)
	}
	if got, want := cfg1.Timestamp, e.Clock.Now().Unix(); got != want {
		t.Fatalf("timestamp=%d, want %d", got, want)
	}
	if got, want := e.Fake.Calls(pathTicket), 1; got != want {
		t.Fatalf("ticket calls=%d, want %d", got, want)
	}
	if got, want := e.Cache.tokens[wechatapi.KindJSAPITicket].value, ticket; got != want {
		t.Fatalf("cached ticket=%q, want %q", got, want)
	}
	data, err := json.Marshal(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"appId"`, `"timestamp"`, `"nonceStr"`, `"signature"`} {
		if !strings.Contains(string(data), k) {
			t.Fatalf("json %s lacks %s", data, k)
		}
	}

	// A restart loads the ticket from the cache.
	if _, err := e.MustClient(t).JSAPITicket(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Fake.Calls(pathTicket), 1; got != want {
		t.Fatalf("ticket calls=%d, want %d", got, want)
	}

	// The ticket's fetch retries on an invalid access token like any call.
	if !c.InvalidateJSAPITicket(ticket) {
		t.Fatal("first invalidation refused")
	}
	e.Fake.RevokeTokens()
	ticket2, err := c.JSAPITicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ticket2 == ticket {
		t.Fatal("ticket not refreshed")
	}
	if got, want := e.Fake.Calls(pathToken), 2; got != want {
		t.Fatalf("token calls=%d, want %d", got, want)
	}
	if c.InvalidateJSAPITicket(ticket2) {
		t.Fatal("second invalidation within MinForcedRefresh allowed")
	}
}

func TestCreateMenu(t *testing.T) {
	e := MustEnv(t)
	c := e.MustClient(t)
	menu := wechatapi.Menu{Buttons: []wechatapi.Button{
		{Type: "view", Name: "绑定", URL: "https://staff.example.com/bind?a=1&b=2"},
		{Name: "盘点", SubButtons: []wechatapi.Button{
			{Type: "scancode_waitmsg", Name: "扫码", Key: "scan"},
			{Type: "view", Name: "扫码页", URL: "https://staff.example.com/scan"},
		}},
	}}
	if err := c.CreateMenu(context.Background(), menu); err != nil {
		t.Fatal(err)
	}
	var got wechatapi.Menu
	if err := json.Unmarshal(e.Fake.Menu(), &got); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(menu)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("menu=%s, want %s", gotJSON, wantJSON)
	}
	if strings.Contains(string(e.Fake.Menu()), `"sub_button":[]`) || !strings.Contains(string(e.Fake.Menu()), `"sub_button"`) {
		t.Fatalf("menu json %s", e.Fake.Menu())
	}

	if err := c.CreateMenu(context.Background(), wechatapi.Menu{}); !wechatapi.IsCode(err, 40016) {
		t.Fatalf("empty menu: err=%v, want errcode 40016", err)
	}
}
