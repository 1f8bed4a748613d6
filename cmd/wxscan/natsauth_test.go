package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// runLogged is MustRunMain with the process's JSON log kept in a buffer.
func runLogged(tb testing.TB, cfg Config) (*Main, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if err := m.Config.Validate(); err != nil {
		tb.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m, logs
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// connectsWithin reports whether a bus on url becomes ready (connected, the
// streams readable) within d.
func connectsWithin(t *testing.T, url string, d time.Duration) (*events.Bus, bool) {
	t.Helper()
	bus, err := events.Connect(context.Background(), events.Options{URL: url, AppID: testAppID, Name: "probe",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, false
	}
	t.Cleanup(func() { bus.Close() })
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := bus.Ready(ctx)
		cancel()
		if err == nil {
			return bus, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return bus, false
}

func TestEmbeddedNATSNeedsItsToken(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Roles = []string{"callback"}
	m, logs := runLogged(t, cfg)

	tokFile := filepath.Join(dir, "nats.token")
	fi, err := os.Stat(tokFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("token file mode=%v, want %v", got, want)
	}
	raw, _ := os.ReadFile(tokFile)
	token := strings.TrimSpace(string(raw))
	if len(token) < 32 {
		t.Fatalf("token %d characters, want at least 32", len(token))
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the log shows the NATS token")
	}
	url := m.NATSURL()
	if !strings.Contains(url, token+"@127.0.0.1:") {
		t.Fatal("NATSURL does not carry the token")
	}
	bare := strings.Replace(url, token+"@", "", 1)
	wrong := strings.Replace(url, token, strings.Repeat("x", len(token)), 1)

	// Without the token or with a wrong one: refused, and a forged event
	// published that way is not stored.
	for name, u := range map[string]string{"no token": bare, "wrong token": wrong} {
		bus, ok := connectsWithin(t, u, time.Second)
		if ok {
			t.Fatalf("%s: connected to the embedded NATS", name)
		}
		if bus != nil {
			ev := events.Event{V: 1, ID: "forged-" + name, AppID: testAppID, From: "oForger", MsgType: "event",
				Event: "scancode_waitmsg", ScanResult: "EAN_13,6901234567892", CreateTime: time.Now().Unix()}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			_, err := bus.Publish(ctx, ev, 0)
			cancel()
			if err == nil {
				t.Fatalf("%s: forged publish accepted", name)
			}
		}
	}
	if got := streamMsgs(t, m); got != 0 {
		t.Fatalf("stream holds %d messages after forged publishes, want 0", got)
	}
	if _, ok := connectsWithin(t, url, 5*time.Second); !ok {
		t.Fatal("with the token: not connected")
	}
	// The in-process connection authenticates too: the callback still stores.
	sim := simFor(m, "plain")
	req, _ := sim.Build(wechatsim.Push{Kind: "location", OpenID: "oReal"})
	if res, err := sim.Send(context.Background(), req); err != nil || res.Status != 200 {
		t.Fatalf("callback: %+v %v", res, err)
	}
	if got := streamMsgs(t, m); got != 1 {
		t.Fatalf("stream msgs=%d, want 1", got)
	}

	// The next start reuses the token.
	m.Close()
	m2 := MustRunMain(t, cfg)
	if !strings.Contains(m2.NATSURL(), token+"@") { // the port may differ (port 0), the token not
		t.Fatal("restart: a new token, want the kept one")
	}
}

func TestEmbeddedNATSTokenFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Roles = []string{"callback"}
	cfg.NATSToken = "given-token-0123456789"
	m := MustRunMain(t, cfg)
	if !strings.Contains(m.NATSURL(), "given-token-0123456789@") {
		t.Fatal("NATSURL does not use WXSCAN_NATS_TOKEN")
	}
	if _, err := os.Stat(filepath.Join(dir, "nats.token")); !os.IsNotExist(err) {
		t.Fatalf("token file written although WXSCAN_NATS_TOKEN is set: %v", err)
	}
	if _, ok := connectsWithin(t, m.NATSURL(), 5*time.Second); !ok {
		t.Fatal("with WXSCAN_NATS_TOKEN: not connected")
	}
}

func TestNATSSettingsParse(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		interval time.Duration
		always   bool
		err      string
	}{
		{env: nil, interval: time.Second},
		{env: map[string]string{"WXSCAN_NATS_SYNC": "always"}, interval: time.Second, always: true},
		{env: map[string]string{"WXSCAN_NATS_SYNC": "250ms"}, interval: 250 * time.Millisecond},
		{env: map[string]string{"WXSCAN_NATS_SYNC": "sometimes"}, err: "WXSCAN_NATS_SYNC"},
		{env: map[string]string{"WXSCAN_NATS_SYNC": "0s"}, err: "WXSCAN_NATS_SYNC"},
		{env: map[string]string{"WXSCAN_NATS_TOKEN": "short"}, err: "WXSCAN_NATS_TOKEN"},
		{env: map[string]string{"WXSCAN_NATS_TOKEN": "has@an/at-sign-and-slash"}, err: "WXSCAN_NATS_TOKEN"},
	} {
		env := map[string]string{"WXSCAN_APPID": "wx1", "WXSCAN_TOKEN": "t", "WXSCAN_APPSECRET": "s", "WXSCAN_PUBLIC_URL": "http://127.0.0.1"}
		for k, v := range tc.env {
			env[k] = v
		}
		m := NewMain()
		m.Getenv = func(k string) string { return env[k] }
		m.Stderr = &strings.Builder{}
		err := m.ParseFlags(context.Background(), nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%v: err=%v, want one naming %s", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if m.Config.NATSSyncInterval != tc.interval || m.Config.NATSSyncAlways != tc.always {
			t.Fatalf("%v: sync %v/%v, want %v/%v", tc.env, m.Config.NATSSyncInterval, m.Config.NATSSyncAlways, tc.interval, tc.always)
		}
	}
}

// TestPerRoleNATSUsers runs the split deployment's NATS configuration
// (events/natsconf, as docker-compose.yml uses it) with a callback-only and
// a workers-only process, each with its own user, through a bind and scans,
// and shows what the callback's user may not do.
func TestPerRoleNATSUsers(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "nats-test")
	t.Setenv("WXSCAN_NATS_SYNC", "1s")
	t.Setenv("WXSCAN_NATS_CALLBACK_PASSWORD", "cb-password-0123")
	t.Setenv("WXSCAN_NATS_WORKERS_PASSWORD", "wk-password-4567")
	natsURL := eventstest.MustConfigServer(t, "../../events/natsconf/nats.conf")
	as := func(user, password string) string {
		return strings.Replace(natsURL, "nats://", "nats://"+user+":"+password+"@", 1)
	}

	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(fake)
	defer api.Close()
	dir := t.TempDir()
	prepareData(t, dir)
	wcfg := testConfig(dir)
	wcfg.Roles = []string{"workers"}
	wcfg.NATSURL = as("workers", "wk-password-4567")
	wcfg.APIBase, wcfg.OAuthBase = api.URL, api.URL
	wk := MustRunMain(t, wcfg)

	ccfg := testConfig(t.TempDir())
	ccfg.Roles = []string{"callback"}
	ccfg.AppSecret = ""
	ccfg.NATSURL = as("callback", "cb-password-0123")
	cb, cbLogs := runLogged(t, ccfg)
	base := "http://" + cb.HTTPAddr()
	if got := httpStatus(t, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("callback readyz=%d, want 200 (stream info allowed)", got)
	}
	ctx := context.Background()

	// A bind through the pages (callback → workers RPC) and scans whose
	// passive replies come back through the reply offer.
	phone := &wechatsim.Phone{Server: base}
	page, err := phone.Bind(ctx, "oRole", "E001", "111111")
	if err != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, "绑定成功") {
		t.Fatalf("bind: %d %v %s", page.Status, err, page.Body)
	}
	sim := simFor(cb, "safe")
	for _, code := range []string{"QR_CODE,LOC:B-02", "EAN_13,6901234567892"} {
		req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: "oRole", Code: code})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Send(ctx, req)
		if err != nil || res.Status != 200 || res.Reply == "" {
			t.Fatalf("scan %s: %+v %v (want a passive reply)", code, res, err)
		}
	}
	if n := len(fake.Sent()); n != 0 {
		t.Fatalf("custom sends=%d, want 0: the replies went back passively", n)
	}
	if got := streamMsgs(t, wk); got != 2 {
		t.Fatalf("stream msgs=%d, want 2", got)
	}
	// The callback's user may read the streams' info ...
	if _, err := cb.bus.JetStream().Stream(ctx, events.StreamName); err != nil {
		t.Fatalf("callback stream info: %v", err)
	}
	// ... but not create a consumer, take the workers' messages, or answer
	// the workers' subjects.
	nc := cb.bus.Conn()
	for _, subj := range []string{
		"$JS.API.CONSUMER.CREATE." + events.StreamName + ".thief",
		"$JS.API.CONSUMER.DURABLE.CREATE." + events.StreamName + ".thief",
		"$JS.API.CONSUMER.MSG.NEXT." + events.StreamName + "." + events.DefaultDurable,
		"$JS.API.STREAM.UPDATE." + events.StreamName,
	} {
		if _, err := nc.Request(subj, []byte(`{"batch":1}`), 500*time.Millisecond); err == nil {
			t.Fatalf("callback user: %s answered", subj)
		}
		waitLog(t, cbLogs, `Permissions Violation for Publish to \"`+subj+`\"`)
	}
	sub, err := nc.SubscribeSync("wxscan.rpc.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	waitLog(t, cbLogs, `Permissions Violation for Subscription to \"wxscan.rpc.>\"`)
	// The pages still work, and the denied subscription saw none of it.
	if page, err := (&wechatsim.Phone{Server: base}).Bind(ctx, "oRole2", "E002", "wrong1"); err != nil || page.Status != http.StatusBadRequest {
		t.Fatalf("wrong bind code: %d %v", page.Status, err)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("callback user received a workers' request on %s", m.Subject)
	}
	if got := streamMsgs(t, wk); got != 2 {
		t.Fatalf("stream msgs=%d after the refused calls, want 2", got)
	}

	// A callback whose settings want another duplicate window may not
	// change the stream: it starts anyway, at once, and says so.
	ccfg2 := ccfg
	ccfg2.MaxSkew = 600 * time.Second
	start := time.Now()
	_, logs2 := runLogged(t, ccfg2)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second callback took %v to start", d)
	}
	waitLog(t, logs2, "its NATS user may not update them")
	if got, want := streamDuplicates(t, wk), events.DuplicateWindowFor(wcfg.MaxSkew); got != want {
		t.Fatalf("duplicate window=%v, want the workers' %v", got, want)
	}
}

func streamDuplicates(t *testing.T, m *Main) time.Duration {
	t.Helper()
	st, err := m.bus.JetStream().Stream(context.Background(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Duplicates
}

func waitLog(t *testing.T, logs *syncBuffer, substr string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %s in:\n%s", substr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWarnsWhenEncryptionNotRequired(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	_, logs := runLogged(t, cfg) // testConfig sets an EncodingAESKey
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"WXSCAN_AES_KEY is set but WXSCAN_REQUIRE_ENCRYPTION is not`) {
		t.Fatalf("no warning in %s", logs.String())
	}
	cfg = testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	cfg.RequireEncryption = true
	_, logs = runLogged(t, cfg)
	if strings.Contains(logs.String(), "WXSCAN_REQUIRE_ENCRYPTION is not") {
		t.Fatal("warned although encryption is required")
	}
}
