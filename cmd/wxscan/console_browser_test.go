package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/xuri/excelize/v2"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/workers/admin"
)

// TestConsoleBrowser drives the operator console (SPEC §10) in headless
// Chromium, on a desktop (1280×800) and on a phone (390×844): sign in, open
// a stocktake, watch its live page follow scans sent with `wxscan simulate`,
// filter the variance, download an export and read it back, import a staff
// file with a bad row, remove a binding, replay a dead letter, sign out and
// find every page refused. Every page is screenshotted at both sizes, must
// fit the width, must not throw, and must request nothing but this machine.
func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a headless browser")
	}
	b := startBrowser(t)
	e := startBrowserEnv(t, "oConsoleNobody", map[string]string{"oScanA": "E001", "oScanB": "E002"})
	desk := openConsoleTab(t, b, 1280, 800)
	phone := openConsoleTab(t, b, 390, 844)
	tabs := []*consoleTab{desk, phone}
	// every opens path in both tabs, checks it with check and screenshots it.
	every := func(path, name string, check func(t *consoleTab)) {
		t.Helper()
		for _, tab := range tabs {
			if got, want := tab.open(e.base+path), 200; got != want {
				t.Fatalf("%s at %dpx: status=%d, want %d", path, tab.width, got, want)
			}
			if check != nil {
				check(tab)
			}
			tab.shot(name)
		}
	}

	// Signed out, every page is the sign-in form.
	every("/console/", "console-01-login", func(tab *consoleTab) {
		if loc := tab.location(); loc != e.base+"/console/login" {
			t.Fatalf("signed out, /console/ shows %s, want the sign-in page", loc)
		}
	})
	// A wrong token: the form again, with why.
	desk.typeInto("#token", "not-the-token")
	if got, want := desk.submit("form button[type=submit]"), 403; got != want {
		t.Fatalf("wrong token: status=%d, want %d", got, want)
	}
	if got, want := desk.text(`p.err[role="alert"]`), "令牌不对，请再试一次。"; got != want {
		t.Fatalf("wrong token message=%q, want %q", got, want)
	}
	desk.shot("console-02-login-wrong")
	for _, tab := range tabs {
		tab.signIn(e.base)
	}
	every("/console/", "console-03-stocktakes-empty", nil)

	// Open a stocktake of two areas, with its book stock.
	book := filepath.Join(t.TempDir(), "book.csv")
	if err := os.WriteFile(book, []byte("location,sku,qty\nA-01,6901234567892,1\nA-01,6920000000018,3\nB-02,X-42,1\nB-03,Y-1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	desk.typeInto("#name", "三月全盘")
	desk.typeInto("#locations", "A-, B-")
	desk.upload("#expected", book)
	if got, want := desk.submit("#open-form button[type=submit]"), 200; got != want {
		t.Fatalf("open stocktake: status=%d, want %d", got, want)
	}
	st := strings.TrimPrefix(desk.location(), e.base+"/console/stocktakes/")
	if !strings.HasPrefix(st, "ST") {
		t.Fatalf("after open the desk shows %s, want the stocktake's page", desk.location())
	}
	if got, want := desk.text("p.flash"), "已开始盘点 "+st+"（三月全盘），账面库存 4 行。"; got != want {
		t.Fatalf("flash=%q, want %q", got, want)
	}
	desk.shot("console-04-stocktake-opened")
	if got, want := phone.open(e.base+"/console/stocktakes/"+st), 200; got != want {
		t.Fatalf("phone live page: status=%d, want %d", got, want)
	}

	// Scans sent as WeChat would (wxscan simulate) show on both live pages
	// within 2 s, without a reload.
	desk.eval(`window.__notReloaded = true`)
	phone.eval(`window.__notReloaded = true`)
	scans := []struct{ openid, code string }{
		{"oScanA", "LOC:A-01"}, {"oScanA", "EAN_13,6901234567892"}, {"oScanA", "EAN_13,6920000000018"},
		{"oScanA", "EAN_13,6930000000015"}, {"oScanB", "LOC:B-02"}, {"oScanB", "CODE_128,X-42"},
	}
	counted := 0
	for _, sc := range scans {
		simulate(t, e, "scan", "--openid", sc.openid, "--code", sc.code)
		sent := time.Now()
		if strings.HasPrefix(sc.code, "LOC:") {
			continue // sets the person's location: nothing to count
		}
		counted++
		for _, tab := range tabs {
			tab.waitWithin(2*time.Second, fmt.Sprintf(`document.getElementById('n-scans').textContent === '%d'`, counted))
		}
		t.Logf("scan %s: both live pages updated %s after simulate returned", sc.code, time.Since(sent).Round(time.Millisecond))
	}
	for _, tab := range tabs {
		if got, want := tab.eval(`window.__notReloaded === true`), "true"; got != want {
			t.Fatalf("the live page at %dpx reloaded", tab.width)
		}
		if got, want := tab.text("#n-people"), "2"; got != want {
			t.Fatalf("people=%s, want %s", got, want)
		}
		if got, want := tab.text("#latest tbody tr td.code"), "X-42"; got != want {
			t.Fatalf("latest scan=%q, want %q", got, want)
		}
		if got := tab.text("#by-location tbody"); !strings.Contains(got, "A-01") || !strings.Contains(got, "B-02") {
			t.Fatalf("by location=%q, want A-01 and B-02", got)
		}
		if got := tab.text("#by-person tbody"); !strings.Contains(got, "张三") || !strings.Contains(got, "李四") {
			t.Fatalf("by person=%q, want 张三 and 李四", got)
		}
	}
	every("/console/stocktakes/"+st, "console-05-stocktake-live", nil)
	every("/console/", "console-06-stocktakes", func(tab *consoleTab) {
		if got, want := tab.text("#stocktakes tbody tr td:nth-child(5)"), "4"; got != want {
			t.Fatalf("list scans=%q, want %q", got, want)
		}
	})

	// The variance, all rows and then only those with a difference.
	every("/console/stocktakes/"+st+"/variance", "console-07-variance", func(tab *consoleTab) {
		if got, want := tab.eval(`document.querySelectorAll('#variance tbody tr').length`), "5"; got != want {
			t.Fatalf("variance rows=%s, want %s", got, want)
		}
	})
	if got, want := desk.submit("#filter-diff"), 200; got != want {
		t.Fatalf("filter: status=%d, want %d", got, want)
	}
	if got, want := desk.location(), e.base+"/console/stocktakes/"+st+"/variance?diff=1"; got != want {
		t.Fatalf("filtered variance at %s, want %s", got, want)
	}
	var diff []string
	if err := json.Unmarshal([]byte(desk.eval(`[...document.querySelectorAll('#variance tbody tr')].map(r => [...r.cells].map(c => c.textContent).join(' '))`)), &diff); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(diff, "\n"), "A-01 6920000000018  3 1 -2 盘亏\nA-01 6930000000015  0 1 +1 盘盈\nB-03 Y-1  2 0 -2 盘亏"; got != want {
		t.Fatalf("variance with a difference:\n%s\nwant\n%s", got, want)
	}
	desk.shot("console-08-variance-diff")

	// Download the variance as XLSX through its link, with the session, and
	// read it back.
	href := desk.attr(`a[href*="kind=variance&format=xlsx"]`, "href")
	if !strings.HasSuffix(href, "format=xlsx") {
		t.Fatalf("XLSX link %q does not name its format", href)
	}
	got, ctype := desk.fetch(href)
	if ctype != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Fatalf("variance XLSX Content-Type=%q", ctype)
	}
	xf, err := excelize.OpenReader(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("variance XLSX: %v", err)
	}
	rows, err := xf.GetRows(xf.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, row := range rows {
		lines = append(lines, strings.Join(row, ","))
	}
	if got, want := strings.Join(lines, "\n"), "location,sku,name,expected,counted,difference\n"+
		"A-01,6901234567892,,1,1,0\nA-01,6920000000018,,3,1,-2\nA-01,6930000000015,,0,1,1\nB-02,X-42,,1,1,0\nB-03,Y-1,,2,0,-2"; got != want {
		t.Fatalf("variance XLSX rows:\n%s\nwant\n%s", got, want)
	}

	// A staff file with a bad row: its line, and nothing imported.
	bad := filepath.Join(t.TempDir(), "staff.csv")
	if err := os.WriteFile(bad, []byte("employee_no,name,bind_code,can_scan\nE010,赵六,101010,是\nE011,钱七,,是\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	every("/console/staff", "console-09-staff", nil)
	desk.upload("#staff-file", bad)
	if got, want := desk.submit("#staff-import button[type=submit]"), 400; got != want {
		t.Fatalf("bad staff file: status=%d, want %d", got, want)
	}
	if got := desk.text("#staff-error"); !strings.Contains(got, "第 3 行") {
		t.Fatalf("bad staff file message=%q, want it to name 第 3 行", got)
	}
	if got := desk.text("#staff tbody"); strings.Contains(got, "赵六") {
		t.Fatalf("a refused file imported someone: %q", got)
	}
	desk.shot("console-10-staff-bad-row")

	// Remove a binding.
	every("/console/bindings", "console-11-bindings", func(tab *consoleTab) {
		if got, want := tab.eval(`document.querySelectorAll('#bindings tbody tr').length`), "2"; got != want {
			t.Fatalf("bindings=%s, want %s", got, want)
		}
	})
	if got, want := desk.submit(`button[data-openid="oScanB"]`), 200; got != want {
		t.Fatalf("remove binding: status=%d, want %d", got, want)
	}
	if got, want := desk.text("p.flash"), "已解除工号 E002（李四）的绑定。"; got != want {
		t.Fatalf("flash=%q, want %q", got, want)
	}
	if got := desk.text("#bindings tbody"); strings.Contains(got, "oScanB") {
		t.Fatalf("the removed binding is still listed: %q", got)
	}
	desk.shot("console-12-binding-removed")

	// Replay a dead letter.
	deadLetter(t, e, "console-dead-1")
	every("/console/ops", "console-13-ops", func(tab *consoleTab) {
		if got := tab.text("#dlq tbody"); !strings.Contains(got, "permanent: browser test") {
			t.Fatalf("dead letters=%q", got)
		}
	})
	if got, want := desk.submit(`#dlq button[data-id]`), 200; got != want {
		t.Fatalf("replay: status=%d, want %d", got, want)
	}
	if got := desk.text("p.flash"); !strings.HasSuffix(got, "已重放。") {
		t.Fatalf("flash=%q, want 死信 … 已重放。", got)
	}
	if got, want := desk.text("#dlq tbody"), "没有死信。"; got != want {
		t.Fatalf("dead letters after replay=%q, want %q", got, want)
	}
	desk.shot("console-14-replayed")

	// An unknown stocktake: the error page.
	for _, tab := range tabs {
		if got, want := tab.open(e.base+"/console/stocktakes/ST0404"), 404; got != want {
			t.Fatalf("unknown stocktake at %dpx: status=%d, want %d", tab.width, got, want)
		}
		if got, want := tab.text(`p.err[role="alert"]`), "没有这个盘点：ST0404"; got != want {
			t.Fatalf("error=%q, want %q", got, want)
		}
		tab.shot("console-15-error")
	}

	// Close the stocktake: its page stops being live.
	desk.open(e.base + "/console/stocktakes/" + st)
	if got, want := desk.submit("#close"), 200; got != want {
		t.Fatalf("close: status=%d, want %d", got, want)
	}
	every("/console/stocktakes/"+st, "console-16-stocktake-closed", func(tab *consoleTab) {
		if got := tab.text("h1"); !strings.Contains(got, "已结束") {
			t.Fatalf("closed stocktake h1=%q", got)
		}
	})

	// Sign out: every page is refused.
	desk.open(e.base + "/console/")
	if got, want := desk.submit("#signout"), 200; got != want {
		t.Fatalf("sign out: status=%d, want %d", got, want)
	}
	if got, want := desk.text("p.flash"), "已退出。"; got != want {
		t.Fatalf("after sign out=%q, want %q", got, want)
	}
	desk.shot("console-17-signed-out")
	for _, p := range []string{"/console/", "/console/stocktakes/" + st, "/console/stocktakes/" + st + "/variance",
		"/console/staff", "/console/bindings", "/console/ops"} {
		desk.open(e.base + p)
		if loc := desk.location(); loc != e.base+"/console/login" {
			t.Fatalf("signed out, %s shows %s, want the sign-in page", p, loc)
		}
	}
	for _, p := range []string{href, "/console/backup", "/console/stocktakes/" + st + "/events"} {
		if status := desk.fetchStatus(p); status != 403 {
			t.Fatalf("signed out, GET %s=%d, want 403", p, status)
		}
	}
}

// TestConsoleStreamsEndAtClose: an open live page's event stream does not
// hold up the server's shutdown (http.Server.Shutdown waits for streaming
// requests without cancelling them): Close ends it at once.
func TestConsoleStreamsEndAtClose(t *testing.T) {
	dir := t.TempDir()
	prepareData(t, dir)
	cfg := testConfig(dir)
	cfg.AdminToken = cliToken
	m := runOnFreePort(t, cfg)
	base := "http://" + m.HTTPAddr()
	st, err := m.workers.db.OpenStocktakeNow()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pages, err := admin.OpenLivePages(ctx, base, cliToken, st.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pages.Close()
	for deadline := time.Now().Add(2 * time.Second); pages.Updates() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("updates=%d within 2 s, want each page's first", pages.Updates())
		}
	}
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %s with live pages open, want well under the 10 s shutdown timeout", took)
	}
	pages.Wait() // the streams have ended
}

// simulate runs `wxscan simulate kind args...` against e's callback.
func simulate(t *testing.T, e *browserEnv, kind string, args ...string) {
	t.Helper()
	env := map[string]string{"WXSCAN_SERVER": e.base, "WXSCAN_TOKEN": testToken, "WXSCAN_AES_KEY": testAESKey, "WXSCAN_APPID": testAppID}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code := run(ctx, append([]string{"simulate", kind}, args...), &stdout, &stderr, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("wxscan simulate %s %v: exit %d\n%s%s", kind, args, code, stdout.String(), stderr.String())
	}
}

// deadLetter puts a dead letter for a text message into e's WECHAT_DLQ, as
// the consumer does after giving up.
func deadLetter(t *testing.T, e *browserEnv, id string) {
	t.Helper()
	now := time.Now()
	ev := events.Event{V: events.Version, ID: id, AppID: testAppID, From: "oScanA", MsgType: "text",
		Content: "hello", MsgID: id, ReceivedAt: now, XML: "<xml/>"}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: events.DLQPrefix + ev.Subject(), Data: data, Header: nats.Header{}}
	m.Header.Set(events.HeaderDLQReason, "permanent: browser test")
	m.Header.Set(events.HeaderDLQAttempts, "1")
	m.Header.Set(events.HeaderDLQFirstFailed, now.UTC().Format(time.RFC3339))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.m.bus.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// consoleTab is a phone (browser_test.go's tab, with its checks) at any
// viewport: a desktop's without touch, or a phone's.
type consoleTab struct {
	*phone
	width int
}

func openConsoleTab(t *testing.T, b *browser, width, height int) *consoleTab {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancel)
	p := &phone{t: t, ctx: ctx, shots: b.shots}
	if err := chromedp.Listen(tab, p.record); err != nil {
		t.Fatal(err)
	}
	mobile := width < 600
	view := chromedp.EmulateViewport(int64(width), int64(height))
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36"
	if mobile {
		view = chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
		ua = phoneUA
	}
	if err := chromedp.Do(ctx,
		cdpCall(network.Enable, network.EnableParams{}),
		view,
		cdpCall(emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "zh-CN,zh"}),
	); err != nil {
		t.Fatalf("set up the tab: %v", err)
	}
	t.Cleanup(func() {
		_, _ = chromedp.Run(p.ctx, chromedp.Evaluate[int](`0`))
		for _, msg := range p.troubles() {
			t.Error(msg)
		}
	})
	return &consoleTab{phone: p, width: width}
}

// signIn signs the tab in with the admin token.
func (c *consoleTab) signIn(base string) {
	c.t.Helper()
	c.open(base + "/console/login")
	c.typeInto("#token", cliToken)
	if got, want := c.submit("form button[type=submit]"), 200; got != want {
		c.t.Fatalf("sign in at %dpx: status=%d, want %d", c.width, got, want)
	}
	if loc := c.location(); loc != base+"/console/" {
		c.t.Fatalf("after sign in at %s, want %s/console/", loc, base)
	}
}

// shot checks the page fits the tab's width and saves a screenshot as
// name-WIDTH.png.
func (c *consoleTab) shot(name string) {
	c.t.Helper()
	if got, want := c.eval(`[document.documentElement.scrollWidth, window.innerWidth]`), fmt.Sprintf("[%d,%d]", c.width, c.width); got != want {
		c.t.Fatalf("%s: page width, viewport width=%s, want %s: the page overflows", name, got, want)
	}
	png, err := chromedp.Run(c.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(c.shots, name+"-"+strconv.Itoa(c.width)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.fine()
}

// waitWithin waits at most d for expr to be true.
func (c *consoleTab) waitWithin(d time.Duration, expr string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingMutation())); err != nil {
		c.t.Fatalf("at %dpx, not within %s: %s (%v)\n%s", c.width, d, expr, err, strings.Join(c.troubles(), "\n"))
	}
	c.fine()
}

func (c *consoleTab) upload(sel, path string) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, chromedp.SetUploadFiles(chromedp.CSS(sel), []string{path})); err != nil {
		c.t.Fatalf("upload %s into %s: %v", path, sel, err)
	}
}

// fetch GETs u from the page, with its cookies, and returns the body and
// its Content-Type.
func (c *consoleTab) fetch(u string) ([]byte, string) {
	c.t.Helper()
	var res struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Body   string `json:"body"`
	}
	js := fmt.Sprintf(`fetch(%q).then(async r => {
  const b = new Uint8Array(await r.arrayBuffer());
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return {status: r.status, type: r.headers.get('Content-Type'), body: btoa(s)};
})`, u)
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("fetch %s: %v", u, err)
	}
	if err := json.Unmarshal(v, &res); err != nil {
		c.t.Fatalf("fetch %s: %v", u, err)
	}
	if res.Status != 200 {
		c.t.Fatalf("fetch %s: status %d", u, res.Status)
	}
	body, err := base64.StdEncoding.DecodeString(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return body, res.Type
}

// fetchStatus GETs u from the page and returns the status.
func (c *consoleTab) fetchStatus(u string) int {
	c.t.Helper()
	js := fmt.Sprintf(`fetch(%q).then(r => { const s = r.status; if (r.body) r.body.cancel(); return s; })`, u)
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("fetch %s: %v", u, err)
	}
	return v
}
