package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

const (
	testAppID  = "wxe2e0000000001"
	testToken  = "e2etoken"
	testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// TestMain lets the test binary act as `wxscan` in a child process, so a
// test can kill -9 a real serve.
func TestMain(m *testing.M) {
	if os.Getenv("WXSCAN_TEST_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Addr = "127.0.0.1:0"
	c.DataDir = dir
	c.NATSListen = "127.0.0.1:0"
	c.AppID, c.Token, c.AESKey, c.AppSecret = testAppID, testToken, testAESKey, "e2esecret"
	c.PublicURL = "http://127.0.0.1"
	return c
}

// MustRunMain runs a whole wxscan process in-process and closes it at cleanup.
func MustRunMain(tb testing.TB, cfg Config) *Main {
	tb.Helper()
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Config.Validate(); err != nil {
		tb.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func simFor(m *Main, mode string) *wechatsim.Sim {
	return &wechatsim.Sim{URL: "http://" + m.HTTPAddr() + "/wechat/callback", Token: testToken, AESKey: testAESKey, AppID: testAppID, Mode: mode}
}

func streamMsgs(tb testing.TB, m *Main) uint64 {
	tb.Helper()
	st, err := m.bus.JetStream().Stream(context.Background(), events.StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func TestServeEndToEnd(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"} // no workers: nothing waits for a reply here
	m := MustRunMain(t, cfg)
	ctx := context.Background()
	base := "http://" + m.HTTPAddr()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.StatusCode, 200; got != want {
			t.Fatalf("%s=%d, want %d", path, got, want)
		}
	}
	if res, err := simFor(m, "plain").Echo(ctx); err != nil || res.Status != 200 {
		t.Fatalf("echo=%+v, %v", res, err)
	}
	for i, mode := range []string{"plain", "compat", "safe"} {
		sim := simFor(m, mode)
		req, err := sim.Build(wechatsim.Push{Kind: "location", OpenID: fmt.Sprintf("oE2E%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // WeChat's retries: same answer, one event
			res, err := sim.Send(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 200 || res.Body != "success" {
				t.Fatalf("%s: %d %q", mode, res.Status, res.Body)
			}
		}
	}
	if got, want := streamMsgs(t, m), uint64(3); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
	// A wrong signature is refused and stores nothing.
	bad := simFor(m, "plain")
	bad.Token = "wrong"
	req, _ := bad.Build(wechatsim.Push{Kind: "location", OpenID: "oBad"})
	if res, _ := bad.Send(ctx, req); res.Status != http.StatusForbidden {
		t.Fatalf("bad signature=%d, want 403", res.Status)
	}
	if got, want := streamMsgs(t, m), uint64(3); got != want {
		t.Fatalf("stream msgs=%d after a refused request, want %d", got, want)
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no appid", map[string]string{"WXSCAN_APPID": ""}, "WXSCAN_APPID is required"},
		{"no token", map[string]string{"WXSCAN_TOKEN": ""}, "WXSCAN_TOKEN is required"},
		{"no secret for workers", map[string]string{"WXSCAN_APPSECRET": ""}, "WXSCAN_APPSECRET is required"},
		{"no secret needed for callback only", map[string]string{"WXSCAN_APPSECRET": "", "WXSCAN_ROLES": "callback"}, ""},
		{"no public url", map[string]string{"WXSCAN_PUBLIC_URL": ""}, "WXSCAN_PUBLIC_URL is required"},
		{"short aes key", map[string]string{"WXSCAN_AES_KEY": "abc"}, "WXSCAN_AES_KEY is malformed"},
		{"aes key not base64", map[string]string{"WXSCAN_AES_KEY": strings.Repeat("!", 43)}, "WXSCAN_AES_KEY is malformed"},
		{"bad prev aes key", map[string]string{"WXSCAN_AES_KEY_PREV": "x"}, "WXSCAN_AES_KEY_PREV is malformed"},
		{"bad role", map[string]string{"WXSCAN_ROLES": "web"}, `unknown role "web"`},
		{"bad skew", map[string]string{"WXSCAN_MAX_SKEW": "soon"}, "WXSCAN_MAX_SKEW"},
		{"ok", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"WXSCAN_APPID": testAppID, "WXSCAN_TOKEN": testToken, "WXSCAN_APPSECRET": "s",
				"WXSCAN_PUBLIC_URL": "https://wx.example.com", "WXSCAN_AES_KEY": testAESKey,
			}
			for k, v := range tt.env {
				env[k] = v
			}
			m := NewMain()
			m.Stderr = io.Discard
			m.Getenv = func(k string) string { return env[k] }
			err := m.ParseFlags(context.Background(), nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err=%v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err=%v, want one line containing %q", err, tt.want)
			}
		})
	}
	// Flags win over the environment.
	m := NewMain()
	m.Getenv = func(k string) string {
		return map[string]string{"WXSCAN_APPID": "a", "WXSCAN_TOKEN": "t", "WXSCAN_APPSECRET": "s", "WXSCAN_PUBLIC_URL": "https://x", "WXSCAN_ADDR": ":1"}[k]
	}
	if err := m.ParseFlags(context.Background(), []string{"--addr", ":2"}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Config.Addr, ":2"; got != want {
		t.Fatalf("addr=%q, want %q", got, want)
	}
}

// child starts `wxscan serve` as a child process on dir and waits until it
// prints its ready line; it returns the process and its HTTP address.
func child(t *testing.T, dir string, extraEnv ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "WXSCAN_TEST_CHILD=1",
		"WXSCAN_ADDR=127.0.0.1:0", "WXSCAN_DATA_DIR="+dir, "WXSCAN_NATS_LISTEN=127.0.0.1:0",
		"WXSCAN_APPID="+testAppID, "WXSCAN_TOKEN="+testToken, "WXSCAN_AES_KEY="+testAESKey,
		"WXSCAN_APPSECRET=s", "WXSCAN_PUBLIC_URL=http://127.0.0.1", "WXSCAN_ROLES=callback")
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, `"addr":"`); i >= 0 && strings.Contains(line, "wxscan ready") {
				rest := line[i+len(`"addr":"`):]
				addr <- rest[:strings.Index(rest, `"`)]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(20 * time.Second):
		t.Fatal("child serve did not become ready")
	}
	return nil, ""
}

func TestKill9LosesNothingAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	cmd, addr := child(t, dir)
	sim := &wechatsim.Sim{URL: "http://" + addr + "/wechat/callback", Token: testToken, AppID: testAppID, Mode: "plain"}
	ctx := context.Background()
	accepted := 0
	for i := range 200 {
		req, err := sim.Build(wechatsim.Push{Kind: "location", OpenID: fmt.Sprintf("oKill%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == 200 && res.Body == "success" {
			accepted++
		}
	}
	// SIGKILL right after the last "success".
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	cfg := testConfig(dir)
	cfg.Roles = []string{"callback"}
	m := MustRunMain(t, cfg)
	if got, want := streamMsgs(t, m), uint64(accepted); got != want {
		t.Fatalf("after kill -9 and restart: stream msgs=%d, want %d (all answered success)", got, want)
	}
	if accepted != 200 {
		t.Fatalf("accepted=%d, want 200", accepted)
	}
}

func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cmd, _ := child(t, t.TempDir())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func BenchmarkStartup(b *testing.B) {
	for b.Loop() {
		m := NewMain()
		m.Config = testConfig(b.TempDir())
		m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := m.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// prepareStaff writes the sample staff directory and the bindings
// (openid → employee number) into dir's store.
func prepareStaff(tb testing.TB, dir string, bound map[string]string) {
	tb.Helper()
	db, err := store.Open(dbPath(dir), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.ImportStaff(devStaff); err != nil {
		tb.Fatal(err)
	}
	for openid, emp := range bound {
		if _, err := db.Bind(openid, emp, "", time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
}

// prepareData writes a staff directory, a binding and an open stocktake
// into dir's store before a process takes the directory.
func prepareData(tb testing.TB, dir string, openids ...string) {
	tb.Helper()
	bound := make(map[string]string, len(openids))
	for _, o := range openids {
		bound[o] = "E001"
	}
	prepareStaff(tb, dir, bound)
	db, err := store.Open(dbPath(dir), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.OpenStocktake("kill drill", time.Now()); err != nil {
		tb.Fatal(err)
	}
}

func TestKill9WorkersMidLoadLosesAndDoublesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	prepareData(t, dir, "oKiller")
	fake := httptest.NewServer(fakewechat.New(fakewechat.Config{}))
	defer fake.Close()
	env := []string{"WXSCAN_ROLES=callback,workers", "WXSCAN_API_BASE=" + fake.URL, "WXSCAN_OAUTH_BASE=" + fake.URL}
	cmd, addr := child(t, dir, env...)
	sim := &wechatsim.Sim{URL: "http://" + addr + "/wechat/callback", Token: testToken, AppID: testAppID, Mode: "plain"}
	ctx := context.Background()
	accepted := map[string]bool{}
	sent := map[string]bool{}
	killed := false
	for i := 0; i < 400; i++ {
		code := fmt.Sprintf("CODE_128,K%04d", i)
		req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: "oKiller", Code: code})
		if err != nil {
			t.Fatal(err)
		}
		sent[code] = true
		if i == 150 {
			go func() { cmd.Process.Signal(syscall.SIGKILL) }() // mid-load
			killed = true
		}
		res, err := sim.Send(ctx, req)
		if err != nil {
			if killed {
				break
			}
			t.Fatal(err)
		}
		if res.Status == 200 {
			accepted[code] = true
		}
	}
	cmd.Wait()
	if len(accepted) < 100 {
		t.Fatalf("only %d scans accepted before the kill", len(accepted))
	}
	cfg := testConfig(dir)
	cfg.APIBase, cfg.OAuthBase = fake.URL, fake.URL
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The unacked batch comes back after AckWait (30 s by default); wait
	// until every accepted scan is recorded.
	deadline := time.Now().Add(60 * time.Second)
	var scans []store.Scan
	for {
		st, err := m.workers.db.OpenStocktakeNow()
		if err != nil {
			t.Fatal(err)
		}
		scans, err = m.workers.db.Scans(st.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, s := range scans {
			got[s.CodeType+","+s.Code] = true
		}
		missing := 0
		for c := range accepted {
			if !got[c] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepted scans missing after restart", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, s := range scans {
		code := s.CodeType + "," + s.Code
		if seen[code] {
			t.Fatalf("scan %s recorded twice", code)
		}
		seen[code] = true
		if !sent[code] {
			t.Fatalf("scan %s was never sent", code)
		}
	}
}

// TestBindScanExportOverHTTP is the newcomer's walk-through as a test: the
// pages fetched over HTTP with a cookie jar and the form submitted, scans in
// safe mode answered with an encrypted passive reply, and the export through
// the CLI and the admin API.
func TestBindScanExportOverHTTP(t *testing.T) {
	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(fake)
	defer api.Close()
	dir := t.TempDir()
	prepareData(t, dir) // staff directory and an open stocktake, nobody bound
	cfg := testConfig(dir)
	cfg.APIBase, cfg.OAuthBase, cfg.AdminToken = api.URL, api.URL, "admintok"
	m := MustRunMain(t, cfg)
	base := "http://" + m.HTTPAddr()
	ctx := context.Background()

	phone := &wechatsim.Phone{Server: base}
	page, err := phone.Bind(ctx, "oPhone", "E001", "wrong")
	if err != nil || page.Status != http.StatusBadRequest {
		t.Fatalf("wrong bind code: %d %v", page.Status, err)
	}
	page, err = phone.Bind(ctx, "oPhone", "E001", "111111")
	if err != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, "绑定成功") {
		t.Fatalf("bind: %d %v %s", page.Status, err, page.Body)
	}

	sim := simFor(m, "safe")
	for _, code := range []string{"QR_CODE,LOC:B-02", "EAN_13,6901234567892"} {
		req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: "oPhone", Code: code})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 || res.Reply == "" {
			t.Fatalf("scan %s: %d %q (want an encrypted passive reply)", code, res.Status, res.Body)
		}
	}
	if n := len(fake.Sent()); n != 0 {
		t.Fatalf("custom sends=%d, want 0: the replies went back passively", n)
	}

	var out, errOut strings.Builder
	env := map[string]string{"WXSCAN_SERVER": base, "WXSCAN_ADMIN_TOKEN": "admintok"}
	getenv := func(k string) string { return env[k] }
	if code := run(ctx, []string{"scans", "export", "--stocktake", "ST0001"}, &out, &errOut, getenv); code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got, want := lines[0], "stocktake_id,employee_no,openid,code_type,code,location,qty,scanned_at,event_id,sku,name"; got != want {
		t.Fatalf("header=%q, want %q", got, want)
	}
	if got, want := len(lines), 2; got != want {
		t.Fatalf("export lines=%d, want %d: %q", got, want, out.String())
	}
	if !strings.HasPrefix(lines[1], "ST0001,E001,oPhone,EAN_13,6901234567892,B-02,1,") {
		t.Fatalf("scan row=%q", lines[1])
	}
}

func TestCallbackAnswers503WhenNATSIsGone(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	m := MustRunMain(t, cfg)
	m.natsSrv.Close()
	sim := simFor(m, "plain")
	req, _ := sim.Build(wechatsim.Push{Kind: "location", OpenID: "oLate"})
	start := time.Now()
	res, err := sim.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Status, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("503 took %v, want < 2s", d)
	}
	resp, err := http.Get("http://" + m.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("readyz=%d, want %d", got, want)
	}
}
