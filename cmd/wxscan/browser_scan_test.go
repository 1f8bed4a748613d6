package main

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// testBrowserScanPage opens /scan for a bound person (李四, E002): before
// any stocktake (it says so and its controls are off), in plain Chromium
// (no WeChat: it says so, the typed fallback records), in WeChat (the real
// jweixin, talking to a fake WeixinJSBridge injected before any script:
// scan, quantity, undo, a scan from the chat, a failed scan), with a
// config WeChat refuses (wx.error), and after the close.
func testBrowserScanPage(t *testing.T, b *browser) {
	const openid = "oBrowserScan"
	e := startBrowserEnv(t, openid, map[string]string{openid: "E002"})

	openScan := func(t *testing.T, p *phone) {
		t.Helper()
		if got, want := p.open(e.base+"/scan"), 200; got != want {
			t.Fatalf("scan page status=%d, want %d", got, want)
		}
		if loc := p.location(); !strings.HasPrefix(loc, e.base+"/scan?s=") {
			t.Fatalf("scan page at %s, want %s/scan?s=...", loc, e.base)
		}
		if got, want := p.text("h1"), "扫码盘点"; got != want {
			t.Fatalf("h1=%q, want %q", got, want)
		}
		if got, want := p.text(".who"), "李四（工号 E002）"; got != want {
			t.Fatalf("who=%q, want %q", got, want)
		}
		if !p.requested(e.base + "/static/jweixin-1.6.0.js") {
			t.Fatalf("the page did not load the JS-SDK from its own origin: %q", p.requestedURLs())
		}
		// The list has been read (or refused) before anything is checked.
		p.waitJS(`document.getElementById('empty').textContent !== '正在读取…'`)
	}
	disabled := func(p *phone) string {
		return p.eval(`['scanbtn', 'code'].map(function (id) { return document.getElementById(id).disabled; }).concat(document.querySelector('#manual button').disabled).join()`)
	}
	closed := func(t *testing.T, p *phone, shot string) {
		t.Helper()
		if got, want := p.text("#stocktake"), "现在没有进行中的盘点，不能扫码。盘点开始后，请重新打开本页。"; got != want {
			t.Fatalf("stocktake line=%q, want %q", got, want)
		}
		if got, want := disabled(p), `"true,true,true"`; got != want {
			t.Fatalf("scan button, input, submit disabled=%s, want %s", got, want)
		}
		if got, want := p.text("#hint"), "没有进行中的盘点，扫一扫已停用。"; got != want {
			t.Fatalf("hint=%q, want %q", got, want)
		}
		if got, want := p.text("#empty"), "没有进行中的盘点。"; got != want {
			t.Fatalf("list says %q, want %q", got, want)
		}
		if got := p.eval(`document.getElementById('note').hidden`); got != "true" {
			t.Fatalf("the 10-minute note hidden=%s, want true", got)
		}
		if body := p.text("body"); strings.Contains(body, "扫码没有记录") {
			t.Fatalf("the page says 扫码没有记录 to someone who only opened it:\n%s", body)
		}
		p.shot(shot)
	}

	t.Run("NoStocktake", func(t *testing.T) {
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, true))
		openScan(t, p)
		closed(t, p, "scan-1-no-stocktake")
		if calls := p.bridgeCalls(); len(calls) != 0 {
			t.Fatalf("bridge calls with nothing to scan: %+v", calls)
		}
	})

	r := runCLI(t, e.base, cliToken, "stocktake", "open", "浏览器盘点").mustOK(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	stocktake := lines[len(lines)-1]

	t.Run("NoBridge", func(t *testing.T) {
		p := openPhone(t, b, phoneUA, "")
		openScan(t, p)
		if got, want := disabled(p), `"true,false,false"`; got != want {
			t.Fatalf("scan button, input, submit disabled=%s, want %s", got, want)
		}
		if got, want := p.text("#hint"), "请在微信里打开本页使用扫一扫；也可以在下面手动输入。"; got != want {
			t.Fatalf("hint=%q, want %q", got, want)
		}
		if got, want := p.text("#empty"), "本次盘点你还没有扫码。"; got != want {
			t.Fatalf("list says %q, want %q", got, want)
		}
		if got, want := p.text("#count"), "0"; got != want {
			t.Fatalf("count=%q, want %q", got, want)
		}
		p.shot("scan-2-no-bridge")

		// The typed fallback records: a location code, then a barcode.
		p.typeInto("#code", "LOC:A-01")
		p.tap("#manual button[type=submit]")
		p.waitJS(`document.getElementById('loc').textContent === 'A-01'`)
		p.typeInto("#code", "6901234567892")
		p.tap("#manual button[type=submit]")
		p.waitJS(`document.querySelectorAll('#recent li').length === 1`)
		if got, want := p.text("#recent li .label"), "6901234567892"; got != want {
			t.Fatalf("line=%q, want %q", got, want)
		}
		if got, want := p.value("#recent li .edit input"), "1"; got != want {
			t.Fatalf("qty=%q, want %q", got, want)
		}
		if got, want := p.text("#count"), "1"; got != want {
			t.Fatalf("count=%q, want %q", got, want)
		}
		if msg := p.text("#result"); !strings.HasPrefix(msg, "已记录 6901234567892（库位 A-01）") {
			t.Fatalf("result=%q, want 已记录 6901234567892（库位 A-01）...", msg)
		}
		p.shot("scan-3-typed")
		row := scanRow(t, e, stocktake, "6901234567892")
		if got, want := row["openid"]+" "+row["employee_no"]+" "+row["location"], openid+" E002 A-01"; got != want {
			t.Fatalf("recorded scan=%q, want %q (%v)", got, want, row)
		}
	})

	t.Run("WeChat", func(t *testing.T) {
		p := openPhone(t, b, wechatUA, fakeBridgeScript(true, true, "EAN_13,6920000000018", "!fail"))
		openScan(t, p)
		p.waitEnabled("#scanbtn")
		if got, want := p.text("#hint"), "点“扫一扫”，对准条码或二维码。"; got != want {
			t.Fatalf("hint=%q, want %q", got, want)
		}
		// The typed scan made in plain Chromium is listed: the list is the
		// person's, not the tab's.
		if got, want := p.text("#recent li .label")+" "+p.text("#count"), "6901234567892 1"; got != want {
			t.Fatalf("first line and count=%q, want %q", got, want)
		}
		p.shot("scan-4-wechat-ready")

		// wx.config went to the bridge as preVerifyJSAPI, signed for the URL
		// the phone shows (without its fragment).
		calls := p.bridgeCalls()
		if len(calls) == 0 || calls[0].Name != "preVerifyJSAPI" {
			t.Fatalf("first bridge call=%+v, want preVerifyJSAPI", calls)
		}
		args := calls[0].Args
		if got, want := args.VerifyAppID+" "+args.SignType+" "+strings.Join(args.JSAPIList, ","), testAppID+" sha1 scanQRCode"; got != want {
			t.Fatalf("preVerifyJSAPI=%q, want %q", got, want)
		}
		ts, err := strconv.ParseInt(args.Timestamp, 10, 64)
		if err != nil {
			t.Fatalf("verifyTimestamp %q: %v", args.Timestamp, err)
		}
		ticket, err := e.m.workers.wx.JSAPITicket(p.ctx)
		if err != nil {
			t.Fatal(err)
		}
		shown, err := url.Parse(p.location())
		if err != nil {
			t.Fatal(err)
		}
		shown.Fragment = ""
		if got, want := args.Signature, wechatapi.JSSDKSignature(ticket, args.NonceStr, ts, shown.String()); got != want {
			t.Fatalf("signature=%s, want %s (for %s)", got, want, shown)
		}

		// 扫一扫: wx.scanQRCode with needResult 1; the line appears, qty 1.
		p.tap("#scanbtn")
		p.waitJS(`document.querySelectorAll('#recent li').length === 2`)
		scans := 0
		for _, c := range p.bridgeCalls() {
			if c.Name == "scanQRCode" {
				scans++
				if c.Args.NeedResult != 1 || c.Args.Signature != args.Signature {
					t.Fatalf("scanQRCode call=%+v, want needResult 1 with wx.config's signature", c)
				}
			}
		}
		if scans != 1 {
			t.Fatalf("scanQRCode calls=%d, want 1", scans)
		}
		if got, want := p.text("#recent li .label")+" "+p.value("#recent li .edit input")+" "+p.text("#count"), "6920000000018 1 2"; got != want {
			t.Fatalf("line, qty, count=%q, want %q", got, want)
		}
		if got, want := p.text("#recent li .meta"), "库位 A-01 · "; !strings.HasPrefix(got, want) {
			t.Fatalf("meta=%q, want %q...", got, want)
		}
		p.shot("scan-5-wechat-scanned")

		// Quantity 12: the count follows.
		p.eval(`document.querySelector('#recent li .edit input').value = '12'`)
		p.tap("#recent li .save")
		p.waitJS(`document.getElementById('count').textContent === '13'`)
		if got, want := p.value("#recent li .edit input"), "12"; got != want {
			t.Fatalf("qty=%q, want %q", got, want)
		}
		msg := p.text("#result")
		if !strings.Contains(msg, "改为 12 件") || !strings.Contains(msg, "13 件") {
			t.Fatalf("result=%q, want it to name the quantity 12 and the count 13", msg)
		}
		// The line's time is the one the workers' words name.
		meta := p.text("#recent li .meta")
		if hhmm := meta[max(0, len(meta)-8):max(0, len(meta)-3)]; !strings.Contains(msg, hhmm+" 扫的") {
			t.Fatalf("line time (%q) is not the time in %q", meta, msg)
		}
		if got := p.text("#recent li .msg"); got != "" {
			t.Fatalf("line message=%q, want none (the result is at the top)", got)
		}
		if got, want := scanRow(t, e, stocktake, "6920000000018")["qty"], "12"; got != want {
			t.Fatalf("exported qty=%q, want %q", got, want)
		}
		p.shot("scan-6-qty-12")

		// A quantity out of range: the workers' words, nothing changed.
		p.eval(`document.querySelector('#recent li .edit input').value = '100000'`)
		p.tap("#recent li .save")
		p.waitJS(`document.querySelector('#recent li .msg').textContent === '数量要在 1 到 99999 之间。'`)
		if got, want := p.text("#count"), "13"; got != want {
			t.Fatalf("count after a refused quantity=%q, want %q", got, want)
		}
		p.shot("scan-7-qty-refused")

		// 撤销: marked cancelled, no controls, the count drops.
		p.tap("#recent li .undo")
		p.waitJS(`document.getElementById('count').textContent === '1'`)
		if got, want := p.attr("#recent li", "class"), "cancelled"; got != want {
			t.Fatalf("line class=%q, want %q", got, want)
		}
		if got, want := p.text("#recent li .why"), "已撤销，不计入盘点"; got != want {
			t.Fatalf("why=%q, want %q", got, want)
		}
		if got := p.eval(`document.querySelectorAll('#recent li:first-child button, #recent li:first-child input').length`); got != "0" {
			t.Fatalf("a cancelled line has %s controls", got)
		}
		if got := p.eval(`getComputedStyle(document.querySelector('#recent li .label')).textDecorationLine`); got != `"line-through"` {
			t.Fatalf("cancelled label decoration=%s, want line-through", got)
		}
		p.shot("scan-8-undone")
	})

	t.Run("ChatScan", func(t *testing.T) {
		// A scan from the chat menu: listed when the page is opened again,
		// whichever way it was made.
		sim := &wechatsim.Sim{URL: e.base + "/wechat/callback", Token: testToken, AESKey: testAESKey, AppID: testAppID, Mode: "safe"}
		req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: openid, Code: "EAN_13,6930000000015"})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := sim.Send(context.Background(), req); err != nil || res.Status != 200 {
			t.Fatalf("chat scan: %+v %v", res, err)
		}
		scanRow(t, e, stocktake, "6930000000015") // recorded by the workers
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, true, "!fail"))
		openScan(t, p)
		if got, want := p.eval(`document.querySelectorAll('#recent li').length`), "3"; got != want {
			t.Fatalf("lines=%s, want %s", got, want)
		}
		if got, want := p.text("#recent li .label")+" "+p.text("#count"), "6930000000015 2"; got != want {
			t.Fatalf("chat scan line and count=%q, want %q", got, want)
		}
		if got, want := p.attr("#recent li:nth-child(2)", "class"), "cancelled"; got != want {
			t.Fatalf("the undone line's class=%q, want %q", got, want)
		}
		p.waitEnabled("#scanbtn")
		p.shot("scan-9-chat-scan-listed")

		// A scan WeChat fails: said so, nothing recorded.
		p.tap("#scanbtn")
		p.waitJS(`document.getElementById('result').textContent === '扫码没有成功，请再试一次，或手动输入。'`)
		if got := p.eval(`document.querySelectorAll('#recent li').length`); got != "3" {
			t.Fatalf("lines after a failed scan=%s, want 3", got)
		}
		p.shot("scan-10-scan-failed")
	})

	t.Run("MarkupIsText", func(t *testing.T) {
		// A typed code that looks like markup is shown as the text it is.
		const code = `<img src=x onerror="document.title='pwned'">`
		p := openPhone(t, b, phoneUA, "")
		openScan(t, p)
		p.typeInto("#code", code)
		p.tap("#manual button[type=submit]")
		p.waitJS(`document.querySelectorAll('#recent li').length === 4`)
		if got := p.text("#recent li .label"); got != code {
			t.Fatalf("line=%q, want %q", got, code)
		}
		if got := p.eval(`document.querySelectorAll('#scan img').length === 0 && document.title === '扫码盘点'`); got != "true" {
			t.Fatalf("no image in the page and the title unchanged=%s, want true", got)
		}
		p.shot("scan-11-markup-as-text")
	})

	t.Run("ReportBeacon", func(t *testing.T) {
		// In WeChat on a phone, jweixin reports to open.weixin.qq.com with an
		// image once wx.config is verified: the page's policy refuses it, so
		// the phone sends nothing anywhere else.
		p := openPhone(t, b, wechatUA, `window.__wxNetwork = 'wifi';`+fakeBridgeScript(false, true))
		// Not p.open: it fails on the troubles this test expects.
		resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(e.base+"/scan"))
		if err != nil || resp.Status != 200 {
			t.Fatalf("scan page: %v %v", resp, err)
		}
		// Chromium announces the request, then its policy check blocks it
		// before it leaves (the beacon carries the page's URL, session and
		// all).
		var refused []string
		blocked := func() bool {
			for _, m := range refused {
				if strings.Contains(m, `Content Security Policy directive: "img-src data:". The action has been blocked.`) {
					return true
				}
			}
			return false
		}
		waitUntil(t, "the report beacon refused", func() bool {
			refused = append(refused, p.forgive("https://open.weixin.qq.com/sdk/report?")...)
			return blocked()
		})
		p.waitEnabled("#scanbtn")
		p.eval(`0`) // a round trip: every event sent before it is recorded
		refused = append(refused, p.forgive("https://open.weixin.qq.com/sdk/report?")...)
		for _, m := range refused {
			if !strings.HasPrefix(m, "browser log (security): ") && !strings.HasPrefix(m, "request to another machine: https://open.weixin.qq.com/sdk/report?") {
				t.Fatalf("unexpected trouble with the beacon: %s", m)
			}
		}
	})

	t.Run("ConfigRefused", func(t *testing.T) {
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, false))
		openScan(t, p)
		p.waitJS(`document.getElementById('hint').textContent === '微信扫一扫暂时用不了，请刷新页面重试；也可以在下面手动输入。'`)
		if got, want := disabled(p), `"true,false,false"`; got != want {
			t.Fatalf("scan button, input, submit disabled=%s, want %s", got, want)
		}
		p.shot("scan-12-config-refused")
	})

	t.Run("ClosedWhileOpen", func(t *testing.T) {
		// The stocktake closes while the page is open: the next scan is
		// refused with the workers' words and the page turns its controls off.
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, true, "EAN_13,6940000000012"))
		openScan(t, p)
		p.waitEnabled("#scanbtn")
		runCLI(t, e.base, cliToken, "stocktake", "close", stocktake).mustOK(t)
		p.tap("#scanbtn")
		p.waitJS(`document.getElementById('scanbtn').disabled && document.getElementById('code').disabled`)
		if got, want := p.text("#result"), "现在没有进行中的盘点，扫码没有记录。请等管理员开始盘点后再扫。"; got != want {
			t.Fatalf("result=%q, want %q", got, want)
		}
		if got, want := disabled(p), `"true,true,true"`; got != want {
			t.Fatalf("scan button, input, submit disabled=%s, want %s", got, want)
		}
		if got, want := p.text("#stocktake"), "现在没有进行中的盘点，不能扫码。盘点开始后，请重新打开本页。"; got != want {
			t.Fatalf("stocktake line=%q, want %q", got, want)
		}
		// The closed stocktake's lines go: nothing in them can change now.
		p.waitJS(`document.querySelectorAll('#recent li').length === 0 && document.getElementById('empty').textContent === '没有进行中的盘点。'`)
		if got := p.eval(`document.getElementById('count').parentNode.hidden && document.getElementById('note').hidden`); got != "true" {
			t.Fatalf("count and the 10-minute note hidden=%s, want true", got)
		}
		p.shot("scan-13-closed-while-open")
	})

	t.Run("Closed", func(t *testing.T) {
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, true))
		openScan(t, p)
		closed(t, p, "scan-14-closed")
	})

	// A scoped stocktake, opened on the workers' store (the admin API on
	// this branch opens only unscoped ones).
	if _, err := e.m.workers.db.OpenStocktakeSpec(store.StocktakeSpec{Name: "B 区盘点", Locations: []string{"B-"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Run("Scoped", func(t *testing.T) {
		// Open, but not where the person is: say so, and let a location
		// code be scanned; after it the page is the stocktake's.
		p := openPhone(t, b, wechatUA, fakeBridgeScript(false, true, "QR_CODE,LOC:B-07"))
		openScan(t, p)
		if got, want := p.text("#stocktake"), "库位 A-01 不在进行中的盘点范围内，请先扫正确的库位码。"; got != want {
			t.Fatalf("stocktake line=%q, want %q", got, want)
		}
		p.waitEnabled("#scanbtn")
		if got, want := disabled(p), `"false,false,false"`; got != want {
			t.Fatalf("scan button, input, submit disabled=%s, want %s", got, want)
		}
		p.shot("scan-15-out-of-scope")
		// The location is set, then the page is loaded again.
		if got, want := p.submit("#scanbtn"), 200; got != want {
			t.Fatalf("page after the location scan: status=%d, want %d", got, want)
		}
		if got, want := p.text("#stocktake"), "盘点：B 区盘点"; got != want {
			t.Fatalf("stocktake line=%q, want %q", got, want)
		}
		p.waitJS(`document.getElementById('empty').textContent === '本次盘点你还没有扫码。'`)
		if got, want := p.text("#loc")+" "+p.text("#count"), "B-07 0"; got != want {
			t.Fatalf("location and count=%q, want %q", got, want)
		}
		p.shot("scan-16-location-set")
	})
}

// waitUntil polls ok for up to 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
