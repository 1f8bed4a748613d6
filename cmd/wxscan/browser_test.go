package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wxscan/wxscan/workers/fakewechat"
)

// TestBrowser drives the staff pages (SPEC §6) in headless Chromium at a
// phone's viewport: the bind flow through the (fake) WeChat authorize page,
// the refusal pages, and the /scan page without and with WeChat's JS bridge.
// Every page is screenshotted into $WXSCAN_TEST_ARTIFACTS/screenshots (or a
// temporary directory), must fit the phone's width, must not throw or log a
// script error, and must request nothing but this machine.
//
// It skips when no Chromium is installed, unless WXSCAN_TEST_REQUIRE_BROWSER=1.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a headless browser")
	}
	b := startBrowser(t)
	t.Run("Bind", func(t *testing.T) { testBrowserBind(t, b) })
	t.Run("RefusalPages", func(t *testing.T) { testBrowserRefusals(t, b) })
	t.Run("ScanPage", func(t *testing.T) { testBrowserScanPage(t, b) })
}

// testBrowserBind binds a phone's WeChat user through /bind, the authorize
// page and the form, with a wrong bind code first.
func testBrowserBind(t *testing.T, b *browser) {
	const openid = "oBrowserBind"
	e := startBrowserEnv(t, openid, nil)
	p := openPhone(t, b, wechatUA, "")

	// /bind → authorize page → /oauth/callback: the form.
	if got, want := p.open(e.base+"/bind"), 200; got != want {
		t.Fatalf("bind page status=%d, want %d", got, want)
	}
	if loc := p.location(); !strings.HasPrefix(loc, e.base+"/oauth/callback?") {
		t.Fatalf("bind page at %s, want %s/oauth/callback?...", loc, e.base)
	}
	if !p.requested(e.api + "/connect/oauth2/authorize?") {
		t.Fatalf("the browser never went through the authorize page: %q", p.requestedURLs())
	}
	if got, want := p.text("h1"), "绑定工号"; got != want {
		t.Fatalf("h1=%q, want %q", got, want)
	}
	p.shot("bind-1-form")

	// A wrong bind code: the form again, 400, with what to do.
	p.typeInto("#employee_no", "E001")
	p.typeInto("#bind_code", "000000")
	if got, want := p.submit("form button[type=submit]"), 400; got != want {
		t.Fatalf("wrong code status=%d, want %d", got, want)
	}
	if got, want := p.text(`p.err[role="alert"]`), "工号或绑定码不对，请核对后再试。错误太多会被暂时锁定。"; got != want {
		t.Fatalf("error=%q, want %q", got, want)
	}
	if got, want := p.value("#employee_no"), "E001"; got != want {
		t.Fatalf("employee_no kept=%q, want %q", got, want)
	}
	if got, want := p.value("#bind_code"), ""; got != want {
		t.Fatalf("bind_code kept=%q, want %q", got, want)
	}
	p.shot("bind-2-wrong-code")

	// The right code: bound.
	p.typeInto("#bind_code", "111111")
	if got, want := p.submit("form button[type=submit]"), 200; got != want {
		t.Fatalf("bind status=%d, want %d", got, want)
	}
	if got, want := p.text("h1"), "绑定成功"; got != want {
		t.Fatalf("h1=%q, want %q", got, want)
	}
	if got, want := p.text(".who"), "张三（工号 E001）"; got != want {
		t.Fatalf("who=%q, want %q", got, want)
	}
	p.shot("bind-3-bound")

	// The operator sees the binding.
	r := runCLI(t, e.base, cliToken, "bindings", "list", "--json").mustOK(t)
	var bindings []struct {
		OpenID     string `json:"openid"`
		EmployeeNo string `json:"employee_no"`
		Name       string `json:"name"`
		State      string `json:"state"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &bindings); err != nil {
		t.Fatalf("bindings list --json: %v: %q", err, r.stdout)
	}
	if got, want := len(bindings), 1; got != want {
		t.Fatalf("bindings=%d, want %d: %q", got, want, r.stdout)
	}
	bd := bindings[0]
	if got, want := strings.Join([]string{bd.OpenID, bd.EmployeeNo, bd.Name, bd.State}, " "), openid+" E001 张三 active"; got != want {
		t.Fatalf("binding=%s, want %s", got, want)
	}

	// Opening the bind page again says who is bound.
	if got, want := p.open(e.base+"/bind"), 200; got != want {
		t.Fatalf("bind page again status=%d, want %d", got, want)
	}
	if got, want := p.text(".who"), "你已绑定：工号 E001 姓名 张三"; got != want {
		t.Fatalf("who=%q, want %q", got, want)
	}
	p.shot("bind-4-already-bound")
}

// testBrowserRefusals opens the OAuth callback the ways it can go wrong:
// each is a clear page with a 4xx status and a way to start over.
func testBrowserRefusals(t *testing.T, b *browser) {
	const openid = "oBrowserRefused"
	e := startBrowserEnv(t, openid, nil)
	p := openPhone(t, b, wechatUA, "")

	// A finished round trip, whose state is now used.
	if got, want := p.open(e.base+"/bind"), 200; got != want {
		t.Fatalf("bind page status=%d, want %d", got, want)
	}
	done, err := url.Parse(p.location())
	if err != nil {
		t.Fatal(err)
	}
	done.Fragment = ""
	// WeChat sometimes redirects twice with the same code: still the form.
	if got, want := p.open(done.String()), 200; got != want {
		t.Fatalf("same code and state again: status=%d, want %d", got, want)
	}
	p.waitVisible("#employee_no")
	reused := *done
	q := reused.Query()
	q.Set("code", e.fake.IssueCode(openid, false))
	reused.RawQuery = q.Encode()

	tests := []struct {
		name    string
		url     func() string
		status  int
		code    string
		message string
	}{
		{name: "bogus-state", url: func() string { return e.base + "/oauth/callback?code=c0de&state=bogus" },
			status: 400, code: "state_invalid", message: "这个链接无效，请重新打开绑定页面。"},
		{name: "reused-state", url: reused.String,
			status: 400, code: "state_used", message: "这个链接已经用过了，请从公众号菜单重新打开绑定页面。"},
		{name: "no-code", url: func() string { return e.base + "/oauth/callback?state=" + e.authorizeURL(t).Query().Get("state") },
			status: 400, code: "oauth_refused", message: "没有拿到微信授权，无法继续。请从公众号菜单重新打开，并点“允许”。"},
		{name: "invalid-code", url: func() string {
			return e.base + "/oauth/callback?code=not-a-code&state=" + e.authorizeURL(t).Query().Get("state")
		}, status: 400, code: "code_invalid", message: "微信授权码无效，请重新打开绑定页面。"},
		{name: "snapshot-user", url: func() string {
			u := e.authorizeURL(t)
			q := u.Query()
			q.Set("snapshot", "1")
			u.RawQuery = q.Encode()
			return u.String()
		}, status: 403, code: "snapshot_user", message: "请在微信里关注公众号后，从菜单打开绑定页面。"},
	}
	for _, tt := range tests {
		if got, want := p.open(tt.url()), tt.status; got != want {
			t.Fatalf("%s: status=%d, want %d", tt.name, got, want)
		}
		if got, want := p.text("h1"), "无法继续"; got != want {
			t.Fatalf("%s: h1=%q, want %q", tt.name, got, want)
		}
		if got, want := p.text("p.err"), tt.message; got != want {
			t.Fatalf("%s: message=%q, want %q", tt.name, got, want)
		}
		if got, want := p.text("p.muted"), fmt.Sprintf("错误 %d · %s", tt.status, tt.code); got != want {
			t.Fatalf("%s: status line=%q, want %q", tt.name, got, want)
		}
		if got, want := p.attr(".links a", "href"), "/bind"; got != want {
			t.Fatalf("%s: link=%q, want %q", tt.name, got, want)
		}
		p.shot("refused-" + tt.name)
	}

	// A bind form whose session is gone: the form again, with what to do.
	if got, want := p.open(e.base+"/bind"), 200; got != want {
		t.Fatalf("bind page status=%d, want %d", got, want)
	}
	p.eval(`document.querySelector('input[name=session]').value = 'expired'`)
	p.typeInto("#employee_no", "E001")
	p.typeInto("#bind_code", "111111")
	if got, want := p.submit("form button[type=submit]"), 400; got != want {
		t.Fatalf("stale form status=%d, want %d", got, want)
	}
	if got, want := p.text(`p.err[role="alert"]`), "页面无效，请从菜单重新打开。"; got != want {
		t.Fatalf("stale form error=%q, want %q", got, want)
	}
	p.shot("refused-stale-form")

	// The scan page for someone not bound: 403, and the way to bind.
	if got, want := p.open(e.base+"/scan"), 403; got != want {
		t.Fatalf("scan page unbound status=%d, want %d", got, want)
	}
	// Opening the page records nothing: it does not say 扫码没有记录.
	if got, want := p.text("p.err"), "你还没有绑定工号，绑定后就能在这里扫码盘点。"; got != want {
		t.Fatalf("not bound message=%q, want %q", got, want)
	}
	if got, want := p.attr(".links a:nth-child(2)", "href"), "/bind"; got != want {
		t.Fatalf("not bound page links to %q, want %q", got, want)
	}
	if got, want := p.text("p.muted"), "错误 403 · not_bound"; got != want {
		t.Fatalf("status line=%q, want %q", got, want)
	}
	p.shot("refused-scan-not-bound")
}

// Phone user agents: a plain Android Chrome, and WeChat's in-app browser.
const (
	phoneUA  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Mobile Safari/537.36"
	wechatUA = phoneUA + " XWEB/1300 MMWEBSDK/20240404 MMWEBID/1234 MicroMessenger/8.0.49.2600(0x28003133) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)

// fakeBridgeScript plays WeChat's JS bridge as the WeChat client injects
// it, for the real jweixin to talk to. When late, it appears after the
// page's scripts ran and announces itself with the WeixinJSBridgeReady
// event, as it often does in the WeChat webview; else it is there before
// them. preVerifyJSAPI (wx.config) answers config:ok, or config:fail unless
// configOK; each scanQRCode with needResult 1 answers with the next of
// results, "!fail" a failure, and a cancel once they are used up;
// getNetworkType (asked by jweixin itself) answers window.__wxNetwork when
// it is set; anything else fails. Every call is kept in window.__wxCalls.
func fakeBridgeScript(late, configOK bool, results ...string) string {
	js, _ := json.Marshal(results)
	return `(function () {
  var late = ` + strconv.FormatBool(late) + `;
  var configOK = ` + strconv.FormatBool(configOK) + `;
  var results = ` + string(js) + `;
  var calls = window.__wxCalls = [];
  var bridge = {
    invoke: function (name, args, cb) {
      calls.push({name: name, args: JSON.parse(JSON.stringify(args || {}))});
      var res;
      if (name === 'preVerifyJSAPI') {
        res = {err_msg: configOK ? 'config:ok' : 'config:fail'};
      } else if (name === 'scanQRCode' && args && args.needResult === 1) {
        var r = results.shift();
        res = r === undefined ? {err_msg: 'scanQRCode:cancel'} : r === '!fail' ? {err_msg: 'scanQRCode:fail'} : {err_msg: 'scanQRCode:ok', resultStr: r};
      } else if (name === 'getNetworkType' && window.__wxNetwork) {
        res = {err_msg: 'network_type:' + window.__wxNetwork};
      } else {
        res = {err_msg: name + ':fail'};
      }
      setTimeout(function () { cb(res); }, 0);
    },
    on: function () {},
    call: function () {}
  };
  if (!late) {
    window.WeixinJSBridge = bridge;
    return;
  }
  document.addEventListener('DOMContentLoaded', function () {
    window.WeixinJSBridge = bridge;
    var ev = document.createEvent('Event');
    ev.initEvent('WeixinJSBridgeReady', false, false);
    document.dispatchEvent(ev);
  });
})();`
}

// bridgeCall is one call the page made to the fake bridge.
type bridgeCall struct {
	Name string `json:"name"`
	Args struct {
		VerifyAppID string   `json:"verifyAppId"`
		SignType    string   `json:"verifySignType"`
		Timestamp   string   `json:"verifyTimestamp"`
		NonceStr    string   `json:"verifyNonceStr"`
		Signature   string   `json:"verifySignature"`
		JSAPIList   []string `json:"verifyJsApiList"`
		NeedResult  int      `json:"needResult"`
	} `json:"args"`
}

// browserEnv is a whole wxscan (callback, workers, embedded NATS, admin API
// with cliToken) and a fake WeChat API whose authorize page signs the
// browser in as one openid. WXSCAN_PUBLIC_URL is the server's real address,
// so the browser follows WeChat's redirects as a phone would and wx.config
// is signed for the URL the browser shows.
type browserEnv struct {
	m    *Main
	fake *fakewechat.Server
	base string // the pages and the public URL, http://127.0.0.1:port
	api  string // the fake WeChat API and authorize page
}

func startBrowserEnv(t *testing.T, openid string, bound map[string]string) *browserEnv {
	t.Helper()
	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The phone's WeChat user: the fake authorize page takes it from ?openid.
		if r.URL.Path == "/connect/oauth2/authorize" && !r.URL.Query().Has("openid") {
			q := r.URL.Query()
			q.Set("openid", openid)
			r.URL.RawQuery = q.Encode()
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	dir := t.TempDir()
	prepareStaff(t, dir, bound)
	cfg := testConfig(dir)
	cfg.APIBase, cfg.OAuthBase, cfg.AdminToken = api.URL, api.URL, cliToken
	m := runOnFreePort(t, cfg)
	return &browserEnv{m: m, fake: fake, base: "http://" + m.HTTPAddr(), api: api.URL}
}

// authorizeURL is where GET /bind sends a phone: the authorize page, with a
// fresh state.
func (e *browserEnv) authorizeURL(t *testing.T) *url.URL {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.base + "/bind")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusFound; got != want {
		t.Fatalf("GET /bind=%d, want %d", got, want)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	u.Fragment = ""
	return u
}

// runOnFreePort runs cfg on a free loopback port, with WXSCAN_PUBLIC_URL
// that address. The port is picked before the process listens, so it is
// tried again if another process took it meanwhile.
func runOnFreePort(t *testing.T, cfg Config) *Main {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cfg.Addr, cfg.PublicURL = addr, "http://"+addr
		m := NewMain()
		m.Config = cfg
		m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := m.Config.Validate(); err != nil {
			t.Fatal(err)
		}
		err = m.Run(context.Background())
		if err == nil {
			t.Cleanup(func() { m.Close() })
			return m
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

// scanRow is the exported scan (scans export, CSV) of code in stocktake,
// by column name.
func scanRow(t *testing.T, e *browserEnv, stocktake, code string) map[string]string {
	t.Helper()
	r := runCLI(t, e.base, cliToken, "scans", "export", "--stocktake", stocktake).mustOK(t)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("export: %v: %q", err, r.stdout)
	}
	var found map[string]string
	for _, row := range rows[1:] {
		m := map[string]string{}
		for i, col := range rows[0] {
			m[col] = row[i]
		}
		if m["code"] == code {
			if found != nil {
				t.Fatalf("scan of %s recorded twice:\n%s", code, r.stdout)
			}
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no scan of %s in the export:\n%s", code, r.stdout)
	}
	return found
}

// browser is one headless Chromium for the whole test; each phone is a tab
// of its own, in a browser context of its own (no shared cookies).
type browser struct {
	ctx   context.Context // the browser, started
	shots string          // where screenshots go
}

// chromiumPath is the Chromium (or Chrome) to drive, or "" when there is
// none.
func chromiumPath() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser starts headless Chromium (no sandbox: tests run as root in
// CI) with every host name but localhost unresolvable, so nothing can leave
// the machine. It stops at the test's cleanup.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("WXSCAN_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatal("WXSCAN_TEST_REQUIRE_BROWSER=1 but no chromium, chromium-browser or google-chrome is installed")
		}
		t.Skip("no chromium installed (apt-get install chromium); set WXSCAN_TEST_REQUIRE_BROWSER=1 to fail instead")
	}
	dir := os.Getenv("WXSCAN_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shots := filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("lang", "zh-CN"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser lives as long as ctx, so its start is bounded by a timer
	// and not by a deadline on ctx.
	timer := time.AfterFunc(20*time.Second, cancelAlloc)
	err := chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Logf("%s; screenshots in %s", path, shots)
	return &browser{ctx: ctx, shots: shots}
}

// phone is one tab at a phone's viewport (390×844 CSS pixels, device scale
// 2, touch). It records every request its pages make and every script
// error, and fails the test on a request to another machine, an uncaught
// exception, a console error or a refusal by the Content-Security-Policy.
// Its actions fail the test after 20 s.
type phone struct {
	t     *testing.T
	ctx   context.Context
	shots string

	mu       sync.Mutex
	requests []string // every URL requested
	problems []string
}

// openPhone opens a tab with user agent ua; script, when set, runs in every
// document before the page's own scripts.
func openPhone(t *testing.T, b *browser, ua, script string) *phone {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	t.Cleanup(cancel)
	p := &phone{t: t, ctx: ctx, shots: b.shots}
	if err := chromedp.Listen(tab, p.record); err != nil {
		t.Fatal(err)
	}
	steps := []chromedp.Action[chromedp.Void]{
		cdpCall(network.Enable, network.EnableParams{}),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait),
		cdpCall(emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "zh-CN,zh"}),
		// A phone in China: the pages show times in its zone, as the chat
		// replies do in the workers' (Asia/Shanghai by default).
		cdpCall(emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Shanghai"}),
	}
	if script != "" {
		steps = append(steps, cdpCall(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("set up the phone: %v", err)
	}
	t.Cleanup(func() {
		// A round trip, so that every event sent before it is recorded.
		_, _ = chromedp.Run(p.ctx, chromedp.Evaluate[int](`0`))
		for _, msg := range p.troubles() {
			t.Error(msg)
		}
	})
	return p
}

func cdpCall[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cmd, params)
		return err
	})
}

// record runs in the tab's event loop, in order: it must return fast and
// run no command.
func (p *phone) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, ev.Request.URL)
		if !onThisMachine(ev.Request.URL) {
			p.problems = append(p.problems, "request to another machine: "+ev.Request.URL)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		p.problems = append(p.problems, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.problems = append(p.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *cdplog.EventEntryAdded:
		// A page answered 4xx is logged as a failed network load: expected
		// here. Anything else at error level (a CSP refusal, a script
		// error) is not.
		if e := ev.Entry; e.Level == cdplog.EntryLevelError && e.Source != cdplog.EntrySourceNetwork {
			p.problems = append(p.problems, fmt.Sprintf("browser log (%s): %s %s", e.Source, e.Text, e.URL))
		}
	}
}

// onThisMachine reports whether a page's request stays on this machine.
func onThisMachine(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "data", "about", "blob":
		return true
	case "http", "https", "ws", "wss":
		h := u.Hostname()
		return h == "127.0.0.1" || h == "localhost" || h == "::1"
	}
	return false
}

// forgive takes the troubles that contain substr off the list, because the
// test expected them, and returns them.
func (p *phone) forgive(substr string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var taken, kept []string
	for _, m := range p.problems {
		if strings.Contains(m, substr) {
			taken = append(taken, m)
		} else {
			kept = append(kept, m)
		}
	}
	p.problems = kept
	return taken
}

func (p *phone) troubles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

func (p *phone) requestedURLs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// requested reports whether the tab requested a URL starting with prefix.
func (p *phone) requested(prefix string) bool {
	for _, u := range p.requestedURLs() {
		if strings.HasPrefix(u, prefix) {
			return true
		}
	}
	return false
}

// fine fails the test now if a page went wrong so far.
func (p *phone) fine() {
	p.t.Helper()
	if msgs := p.troubles(); len(msgs) > 0 {
		p.t.Fatalf("the page went wrong:\n%s", strings.Join(msgs, "\n"))
	}
}

// open navigates to u, follows its redirects, and returns the final page's
// HTTP status.
func (p *phone) open(u string) int {
	p.t.Helper()
	resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		p.t.Fatalf("open %s: %v", u, err)
	}
	p.fine()
	return int(resp.Status)
}

// submit taps the submit button sel, waits for the page it loads and
// returns its HTTP status.
func (p *phone) submit(sel string) int {
	p.t.Helper()
	resp, err := chromedp.RunResponse(p.ctx, chromedp.Tap(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("submit %s: %v", sel, err)
	}
	p.fine()
	return int(resp.Status)
}

func (p *phone) tap(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Tap(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("tap %s: %v", sel, err)
	}
}

func (p *phone) typeInto(sel, text string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		p.t.Fatalf("type into %s: %v", sel, err)
	}
}

func (p *phone) waitVisible(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("wait for %s: %v", sel, err)
	}
}

func (p *phone) waitEnabled(sel string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.WaitEnabled(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("wait for %s to be enabled: %v (hint: %q)", sel, err, p.eval(`document.getElementById('hint') && document.getElementById('hint').textContent`))
	}
}

// waitJS waits until the expression is true, and fails the test if a page
// went wrong meanwhile.
func (p *phone) waitJS(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingMutation())); err != nil {
		p.t.Fatalf("wait for %s: %v\n%s", expr, err, strings.Join(p.troubles(), "\n"))
	}
	p.fine()
}

// text is the visible text of the first element sel matches, trimmed.
func (p *phone) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (p *phone) value(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (p *phone) attr(sel, name string) string {
	p.t.Helper()
	a, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		p.t.Fatalf("%s of %s: %v", name, sel, err)
	}
	return a.Value
}

// eval runs expr in the page and returns its value as JSON.
func (p *phone) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		p.t.Fatalf("eval %s: %v", expr, err)
	}
	return string(v)
}

func (p *phone) location() string {
	p.t.Helper()
	loc, err := chromedp.Run(p.ctx, chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	return loc
}

func (p *phone) bridgeCalls() []bridgeCall {
	p.t.Helper()
	var calls []bridgeCall
	if err := json.Unmarshal([]byte(p.eval(`window.__wxCalls`)), &calls); err != nil {
		p.t.Fatalf("bridge calls: %v", err)
	}
	return calls
}

// shot checks the page shown fits the phone's width and has not gone
// wrong, and saves a screenshot of the viewport as name.png.
func (p *phone) shot(name string) {
	p.t.Helper()
	if got := p.eval(`[document.documentElement.scrollWidth, window.innerWidth]`); got != "[390,390]" {
		p.t.Fatalf("%s: page width, viewport width=%s, want [390,390]: the page overflows the phone", name, got)
	}
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
	p.fine()
}
