package wechatapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

func TestAccessToken_StableTokenRequest(t *testing.T) {
	e := MustEnv(t)
	if _, err := e.MustClient(t).AccessToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := e.TokenRequests()
	if got, want := len(reqs), 1; got != want {
		t.Fatalf("stable_token requests=%d, want %d", got, want)
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.RawQuery != "" || !strings.HasPrefix(r.ContentType, "application/json") {
		t.Fatalf("request %s ?%q %q, want a POST of JSON without a query (the secret stays out of the URL)", r.Method, r.RawQuery, r.ContentType)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"grant_type": "client_credential", "appid": appID, "secret": appSecret}
	if len(body) != len(want) {
		t.Fatalf("body %s, want exactly %v (no force_refresh in normal mode)", r.Body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Fatalf("body %s: %s=%v, want %v", r.Body, k, body[k], v)
		}
	}
	if e.Fake.Calls("/cgi-bin/token") != 0 {
		t.Fatal("the client called cgi-bin/token")
	}
}

// mustStore opens a bbolt store of its own, as each system sharing the AppID has.
func mustStore(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Two systems sharing the AppID, each with its own client and bbolt file, use the same token and never
// invalidate each other's; when one forces a refresh, the other picks up the new token without forcing
// one of its own.
func TestAccessToken_TwoSystems(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	dbA, dbB := mustStore(t), mustStore(t)
	sysA := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.Cache = dbA })
	sysB := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.Cache = dbB })
	send := func(c *wechatapi.Client, who string) {
		t.Helper()
		if err := c.SendText(ctx, "oUser", who); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	}
	stable := func(wantNormal, wantForced int) {
		t.Helper()
		if n, f := e.Fake.StableTokenCalls(); n != wantNormal || f != wantForced {
			t.Fatalf("stable_token calls (normal, forced)=(%d, %d), want (%d, %d)", n, f, wantNormal, wantForced)
		}
	}

	tok1, err := sysA.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(10 * time.Minute)
	tokB, err := sysB.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tokB != tok1 {
		t.Fatalf("B got %q, want A's %q", tokB, tok1)
	}
	send(sysA, "A")
	send(sysB, "B")
	stable(2, 0)

	// A restart of A loads its token from its own file.
	if tok, err := e.MustClient(t, func(cfg *wechatapi.Config) { cfg.Cache = dbA }).AccessToken(ctx); err != nil || tok != tok1 {
		t.Fatalf("after restart: token=%q err=%v, want %q", tok, err, tok1)
	}
	stable(2, 0)

	// Both refresh ahead of expiry; they get the same new token and the old one keeps working meanwhile.
	e.Clock.Add(7200*time.Second - 10*time.Minute - 5*time.Minute + time.Second)
	tok2, err := sysA.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok1 {
		t.Fatal("A did not refresh ahead of expiry")
	}
	if tok, err := sysB.AccessToken(ctx); err != nil || tok != tok2 {
		t.Fatalf("B: token=%q err=%v, want A's new %q", tok, err, tok2)
	}
	send(sysA, "A2")
	send(sysB, "B2")
	stable(4, 0)

	// WeChat rejects a call of A: A's normal-mode refresh answers the same token, so A forces one, which
	// invalidates the token B holds. B's next call is rejected; B takes the new token in normal mode.
	e.Fake.FailNext(pathSend, 40001, 1)
	send(sysA, "A3")
	stable(5, 1)
	tok3, err := sysA.AccessToken(ctx)
	if err != nil || tok3 == tok2 {
		t.Fatalf("A after the forced refresh: token=%q err=%v, want a new one", tok3, err)
	}
	send(sysB, "B3")
	stable(6, 1)
	if st := sysB.Stats(); st.ForceRefreshCalls != 0 || st.ForcedRefreshes != 1 {
		t.Fatalf("B stats=%+v, want one dropped token and no forced refresh", st)
	}
	for name, db := range map[string]*store.DB{"A": dbA, "B": dbB} {
		v, exp, err := db.LoadToken(wechatapi.KindAccessToken)
		if err != nil || v != tok3 || !exp.After(e.Clock.Now()) {
			t.Fatalf("%s's file holds %q until %v (err %v), want %q", name, v, exp, err, tok3)
		}
	}
	if got, want := len(e.Fake.Sent()), 6; got != want {
		t.Fatalf("sent=%d, want %d", got, want)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Neither the logs (at debug level) nor the metrics ever hold the secret or a token, through refreshes,
// forced refreshes, rate-limited refusals and failures.
func TestSecretNeverInLogsOrMetrics(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	c := e.MustClient(t, func(cfg *wechatapi.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg.Metrics = wechatapi.NewMetrics(reg)
	})

	var tokens []string
	if tok, err := c.AccessToken(ctx); err == nil {
		tokens = append(tokens, tok)
	}
	e.Fake.FailNext(pathSend, 40001, 1)
	if err := c.SendText(ctx, "oUser", "forced"); err != nil {
		t.Fatal(err)
	}
	e.Fake.FailNext(pathSend, 40001, 1)
	if err := c.SendText(ctx, "oUser", "refused"); !wechatapi.IsCode(err, 40001) {
		t.Fatalf("err=%v, want the rate-limited 40001", err)
	}
	if tok, err := c.AccessToken(ctx); err == nil {
		tokens = append(tokens, tok)
	}
	if tkt, err := c.JSAPITicket(ctx); err == nil {
		tokens = append(tokens, tkt)
	}
	e.Clock.Add(2 * time.Hour)
	e.Fake.FailNext(pathToken, 45009, 1)
	if _, err := c.AccessToken(ctx); !wechatapi.IsCode(err, 45009) {
		t.Fatalf("err=%v, want 45009", err)
	}
	e.Fake.FailNext(pathToken, 503, 1)
	if _, err := c.AccessToken(ctx); err == nil {
		t.Fatal("no error for HTTP 503")
	}
	bad := e.MustClient(t, func(cfg *wechatapi.Config) {
		cfg.AppSecret = appSecret + "-wrong"
		cfg.Cache = nil
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if _, err := bad.AccessToken(ctx); !wechatapi.IsCode(err, wechatapi.CodeInvalidAppSecret) {
		t.Fatalf("err=%v, want 40125", err)
	}
	if len(tokens) != 3 || e.Fake.Calls(pathToken) < 5 {
		t.Fatalf("tokens=%d, stable_token calls=%d: the scenario did not run", len(tokens), e.Fake.Calls(pathToken))
	}

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(metrics), `endpoint="cgi-bin/stable_token"`) {
		t.Fatalf("metrics lack the stable_token endpoint:\n%s", metrics)
	}
	for name, text := range map[string]string{"logs": logs.String(), "metrics": string(metrics)} {
		if !strings.Contains(text, "stable_token") {
			t.Fatalf("%s never mention stable_token: the check would be empty", name)
		}
		for _, s := range append([]string{appSecret}, tokens...) {
			if strings.Contains(text, s) {
				t.Fatalf("%s hold the secret or a token %q:\n%s", name, s, text)
			}
		}
	}
}
