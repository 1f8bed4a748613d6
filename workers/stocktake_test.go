package workers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
)

// at is the CreateTime of the chat events of these tests: near the real
// clock, so that the 10-minute rule and the page's list see them as now.
var at = time.Now().Unix()

var msgID int64 = 9_000_000_000

func scanEventAt(tb testing.TB, openid, result string, createTime int64) events.Event {
	tb.Helper()
	raw := fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[scan]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[%s]]></ScanResult></ScanCodeInfo></xml>`, openid, createTime, result)
	e, err := events.Parse(eventstest.AppID, []byte(raw), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// chatScan is a scan event one second after the previous chat event.
func chatScan(tb testing.TB, openid, result string) events.Event {
	at++
	return scanEventAt(tb, openid, result, at)
}

func textEventAt(tb testing.TB, openid, content string, createTime int64) events.Event {
	tb.Helper()
	msgID++
	raw := fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>`, openid, createTime, content, msgID)
	e, err := events.Parse(eventstest.AppID, []byte(raw), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func chatText(tb testing.TB, openid, content string) events.Event {
	at++
	return textEventAt(tb, openid, content, at)
}

// ask publishes e as the callback does and returns the passive reply.
func (h *harness) ask(tb testing.TB, e events.Event) string {
	tb.Helper()
	r, err := h.bus.Publish(context.Background(), e, 3*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	if r == nil {
		tb.Fatalf("no passive reply to %s", e.ID)
	}
	return r.Content
}

func (h *harness) open(tb testing.TB, name string, locs ...string) store.Stocktake {
	tb.Helper()
	st, err := h.db.OpenStocktakeSpec(store.StocktakeSpec{Name: name, Locations: locs}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func wantIn(tb testing.TB, what, got string, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			tb.Fatalf("%s %q lacks %q", what, got, w)
		}
	}
}

func wantNotIn(tb testing.TB, what, got string, not ...string) {
	tb.Helper()
	for _, w := range not {
		if strings.Contains(got, w) {
			tb.Fatalf("%s %q holds %q", what, got, w)
		}
	}
}

func TestScanReplyNamesTheItem(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")

	// No item master: the code, nothing flagged.
	got := h.ask(t, chatScan(t, "oAnn", "EAN_13,6901234567892"))
	wantIn(t, "reply without item master", got, "6901234567892", "1 件")
	wantNotIn(t, "reply without item master", got, "未登记")

	if _, _, err := h.db.ImportItems([]store.Item{{Code: "6901234567892", SKU: "S1", Name: "可口可乐 330ml"}}); err != nil {
		t.Fatal(err)
	}
	got = h.ask(t, chatScan(t, "oAnn", "EAN_13,6901234567892"))
	wantIn(t, "known item reply", got, "可口可乐 330ml", "2 件")
	wantNotIn(t, "known item reply", got, "未登记")

	got = h.ask(t, chatScan(t, "oAnn", "EAN_13,6900000000000"))
	wantIn(t, "unknown code reply", got, "6900000000000", "未登记", "3 件")

	scans := h.scans(t, st.ID)
	if len(scans) != 3 || scans[1].SKU != "S1" || scans[1].Name != "可口可乐 330ml" || scans[2].SKU != "6900000000000" || scans[2].Name != "" {
		t.Fatalf("scans=%+v", scans)
	}
}

func TestScopedStocktakes(t *testing.T) {
	h := MustHarness(t)
	a := h.open(t, "A 区", "A-")
	b := h.open(t, "B 区", "B-")
	h.bind(t, "oAnn", "E001", "111111")

	// No location while only scoped stocktakes are open.
	got := h.ask(t, chatScan(t, "oAnn", "EAN_13,111"))
	wantIn(t, "no-location refusal", got, "库位", "请先扫库位码")
	// A location no open stocktake covers.
	h.ask(t, chatScan(t, "oAnn", "QR_CODE,LOC:C-01"))
	got = h.ask(t, chatScan(t, "oAnn", "EAN_13,111"))
	wantIn(t, "out-of-scope refusal", got, "库位", "C-01", "不在")
	if n := len(h.scans(t, a.ID)) + len(h.scans(t, b.ID)); n != 0 {
		t.Fatalf("refused scans recorded: %d", n)
	}

	h.ask(t, chatScan(t, "oAnn", "QR_CODE,LOC:A-01"))
	wantIn(t, "scan at A-01", h.ask(t, chatScan(t, "oAnn", "EAN_13,111")), "111", "A-01", "1 件")
	h.ask(t, chatScan(t, "oAnn", "QR_CODE,LOC:B-07"))
	wantIn(t, "scan at B-07", h.ask(t, chatScan(t, "oAnn", "EAN_13,222")), "222", "B-07", "1 件")
	h.ask(t, chatScan(t, "oAnn", "QR_CODE,LOC:A-02"))
	wantIn(t, "scan at A-02", h.ask(t, chatScan(t, "oAnn", "EAN_13,333")), "333", "2 件")

	as, bs := h.scans(t, a.ID), h.scans(t, b.ID)
	if len(as) != 2 || as[0].Code != "111" || as[0].Location != "A-01" || as[1].Code != "333" || as[1].Location != "A-02" {
		t.Fatalf("A scans=%+v", as)
	}
	if len(bs) != 1 || bs[0].Code != "222" || bs[0].Location != "B-07" {
		t.Fatalf("B scans=%+v", bs)
	}

	// The page knows whether a stocktake covers the person.
	sess := h.session(t, "oAnn")
	page, rerr := call[events.ScanPageResponse](t, h, events.OpScanPage, events.ScanPageRequest{Session: sess, URL: publicURL + "/scan"})
	if rerr != nil || !page.StocktakeOpen || page.Stocktake != "A 区" || page.Location != "A-02" || page.OpenStocktakes != 2 {
		t.Fatalf("scan page=%+v, %v", page, rerr)
	}
	h.ask(t, chatScan(t, "oAnn", "QR_CODE,LOC:Z-9"))
	page, rerr = call[events.ScanPageResponse](t, h, events.OpScanPage, events.ScanPageRequest{Session: sess, URL: publicURL + "/scan"})
	if rerr != nil || page.StocktakeOpen || page.Stocktake != "" || page.OpenStocktakes != 2 {
		t.Fatalf("scan page out of scope=%+v, %v", page, rerr)
	}
	// A page scan out of scope is refused with the same words.
	_, rerr = call[events.ScanSubmitResponse](t, h, events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "EAN_13,9", ClientID: "c1"})
	if rerr == nil || rerr.Status != 409 || rerr.Code != "out_of_scope" || !strings.Contains(rerr.Message, "库位") {
		t.Fatalf("page scan out of scope: %v", rerr)
	}
}

func TestTextSetsQuantity(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")

	wantIn(t, "qty with no scan", h.ask(t, chatText(t, "oAnn", "12")), "没有可以改数量的扫码")

	if _, _, err := h.db.ImportItems([]store.Item{{Code: "111", SKU: "S1", Name: "可乐"}}); err != nil {
		t.Fatal(err)
	}
	scan := chatScan(t, "oAnn", "EAN_13,111")
	h.ask(t, scan)
	shown := time.Unix(scan.CreateTime, 0).In(mustZone(t, "Asia/Shanghai")).Format("15:04")
	for _, tt := range []struct {
		text  string
		qty   int
		count string
	}{
		{"12", 12, "12 件"},
		{"x12", 12, "12 件"},
		{"X 7", 7, "7 件"},
		{"× 12", 12, "12 件"},
		{"*3", 3, "3 件"},
		{"１２", 12, "12 件"},
		{" ｘ９９９９９ ", 99999, "99999 件"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			got := h.ask(t, chatText(t, "oAnn", tt.text))
			wantIn(t, "qty reply", got, "可乐", tt.count, shown)
			if s := h.scans(t, st.ID); len(s) != 1 || s[0].Qty != tt.qty {
				t.Fatalf("scans=%+v, want qty %d", s, tt.qty)
			}
		})
	}
	for _, text := range []string{"0", "100000", "12a", "x", "你好", "-5", "1.5"} {
		t.Run("help "+text, func(t *testing.T) {
			got := h.ask(t, chatText(t, "oAnn", text))
			wantIn(t, "help reply", got, "点菜单", publicURL+"/bind")
			if s := h.scans(t, st.ID); s[0].Qty != 99999 {
				t.Fatalf("qty changed by %q: %d", text, s[0].Qty)
			}
		})
	}
	// More than 10 minutes after the scan: nothing to change.
	late := textEventAt(t, "oAnn", "5", scan.CreateTime+600)
	wantIn(t, "late qty", h.ask(t, late), "没有可以改数量的扫码")
	if s := h.scans(t, st.ID); s[0].Qty != 99999 {
		t.Fatalf("late qty applied: %d", s[0].Qty)
	}
	// Someone else's text changes nothing of oAnn's.
	wantIn(t, "stranger's qty", h.ask(t, chatText(t, "oBob", "5")), "没有可以改数量的扫码")
}

func mustZone(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func TestTextUndoTwice(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	wantIn(t, "undo with nothing", h.ask(t, chatText(t, "oAnn", "撤销")), "没有可以撤销的扫码")
	h.ask(t, chatScan(t, "oAnn", "EAN_13,111"))
	h.ask(t, chatScan(t, "oAnn", "EAN_13,222"))
	h.ask(t, chatText(t, "oAnn", "2")) // 222 ×2: count 3

	wantIn(t, "first undo", h.ask(t, chatText(t, "oAnn", "撤销")), "已撤销", "222", "1 件")
	wantIn(t, "qty after undo", h.ask(t, chatText(t, "oAnn", "5")), "222", "已撤销")
	wantIn(t, "second undo", h.ask(t, chatText(t, "oAnn", "undo")), "已撤销", "111", "0 件")
	wantIn(t, "third undo", h.ask(t, chatText(t, "oAnn", "撤销")), "没有可以撤销的扫码")
	if s := h.scans(t, st.ID); len(s) != 0 {
		t.Fatalf("scans after two undos=%+v, want none counted", s)
	}
	var all []store.Scan
	if err := h.db.EachScanAll(st.ID, func(s store.Scan) error { all = append(all, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !all[0].Cancelled || !all[1].Cancelled || all[1].Qty != 2 {
		t.Fatalf("stored scans=%+v, want both kept, cancelled", all)
	}
	wantIn(t, "scan after undo", h.ask(t, chatScan(t, "oAnn", "EAN_13,333")), "333", "1 件")
}

// A text delivered twice, by JetStream after a failed reply or by WeChat
// retrying the callback, is applied once: a second 撤销 would cancel
// another scan.
func TestRetriedTextAppliesOnce(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	for _, code := range []string{"111", "222", "333"} {
		h.ask(t, chatScan(t, "oAnn", "EAN_13,"+code))
	}
	live := func() []string {
		var codes []string
		for _, s := range h.scans(t, st.ID) {
			codes = append(codes, s.Code)
		}
		return codes
	}

	t.Run("redelivered by the consumer", func(t *testing.T) {
		h.fake.FailNext("/cgi-bin/message/custom/send", 503, 1) // the reply fails once: the event is redelivered
		before := h.fake.Calls("/cgi-bin/message/custom/send")
		h.publish(t, chatText(t, "oAnn", "撤销"))
		got := h.sentTo(t, "oAnn", 1)
		wantIn(t, "undo reply", got[len(got)-1], "333")
		if calls := h.fake.Calls("/cgi-bin/message/custom/send") - before; calls != 2 {
			t.Fatalf("custom/send calls=%d, want 2 (a failure, then the redelivery's)", calls)
		}
		if got, want := strings.Join(live(), ","), "111,222"; got != want {
			t.Fatalf("live scans=%s, want %s", got, want)
		}
	})
	t.Run("retried callback", func(t *testing.T) {
		e := chatText(t, "oAnn", "撤销")
		first := h.ask(t, e)
		wantIn(t, "undo reply", first, "222")
		h.publish(t, e) // WeChat retries the same message
		h.svc.HandleBatch(context.Background(), []events.Event{e, e})
		time.Sleep(200 * time.Millisecond)
		if got, want := strings.Join(live(), ","), "111"; got != want {
			t.Fatalf("live scans=%s, want %s", got, want)
		}
	})
	t.Run("retried qty", func(t *testing.T) {
		h.ask(t, chatScan(t, "oAnn", "EAN_13,444"))
		e := chatText(t, "oAnn", "x4")
		wantIn(t, "qty reply", h.ask(t, e), "444", "5 件")
		for range 2 {
			h.svc.HandleBatch(context.Background(), []events.Event{e})
		}
		if s := h.scans(t, st.ID); len(s) != 2 || s[1].Qty != 4 {
			t.Fatalf("scans=%+v", s)
		}
		if err := h.db.View(func(tx *store.Tx) error {
			if n := tx.ScanCount(st.ID, "oAnn"); n != 5 {
				t.Fatalf("count=%d, want 5", n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// Text that users or the operator control comes back as inert text: never
// a link or any markup, in the passive reply and in the custom-send one.
func TestRepliesShowUserTextAsText(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	const evil = `<a href="https://evil.example/x">重新登录</a>`
	const shown = `＜a href="https://evil.example/x"＞重新登录＜/a＞`

	passive := h.ask(t, chatScan(t, "oAnn", evil))
	wantIn(t, "passive reply", passive, shown)
	wantNotIn(t, "passive reply", passive, "<a", "</a>")

	h.publish(t, chatScan(t, "oAnn", evil))
	sent := h.sentTo(t, "oAnn", 1)
	wantIn(t, "custom-send reply", sent[0], shown)
	wantNotIn(t, "custom-send reply", sent[0], "<a", "</a>")

	for _, tt := range []struct{ name, event, want string }{
		{"location", "QR_CODE,LOC:<b>A</b>", "＜b＞A＜/b＞"},
		{"scan at that location", "EAN_13,1", "＜b＞A＜/b＞"},
	} {
		got := h.ask(t, chatScan(t, "oAnn", tt.event))
		wantIn(t, tt.name, got, tt.want)
		wantNotIn(t, tt.name, got, "<")
	}
	if _, _, err := h.db.ImportItems([]store.Item{{Code: "2", SKU: "S2", Name: `<a href="https://evil.example">可乐</a>`}}); err != nil {
		t.Fatal(err)
	}
	got := h.ask(t, chatScan(t, "oAnn", "EAN_13,2"))
	wantIn(t, "item name", got, "＜a href=\"https://evil.example\"＞可乐＜/a＞")
	wantNotIn(t, "item name", got, "<")
	got = h.ask(t, chatText(t, "oAnn", "3"))
	wantNotIn(t, "qty reply", got, "<")
	// The product's own link stays a link.
	wantIn(t, "help", h.ask(t, chatText(t, "oAnn", "<a>")), `<a href="`+publicURL+`/bind">`)
}

func TestScanPageListsAndChangesOwnScans(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	h.bind(t, "oCai", "E001", "111111") // moves E001's binding: oAnn is no longer bound
	h.bind(t, "oAnn", "E001", "111111")
	if _, _, err := h.db.ImportStaff([]store.Staff{{EmployeeNo: "E003", Name: "王五", BindCode: "333333", CanScan: true}}); err != nil {
		t.Fatal(err)
	}
	h.bind(t, "oCai", "E003", "333333")
	sess := h.session(t, "oAnn")

	h.ask(t, chatScan(t, "oAnn", "EAN_13,111")) // from the chat
	sub, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "EAN_13,222", ClientID: "c1"})
	if rerr != nil || sub.Scan == nil || sub.Scan.Code != "222" || sub.Scan.Qty != 1 || !sub.Scan.Editable || sub.Count != 2 {
		t.Fatalf("page scan=%+v, %v", sub, rerr)
	}
	h.ask(t, chatScan(t, "oCai", "EAN_13,999")) // someone else's

	recent, rerr := call[events.ScanRecentResponse](t, h, events.OpScanRecent, events.ScanRecentRequest{Session: sess})
	if rerr != nil || len(recent.Scans) != 2 || recent.Scans[0].Code != "222" || recent.Scans[1].Code != "111" || recent.Count != 2 {
		t.Fatalf("recent=%+v, %v", recent, rerr)
	}
	ref := recent.Scans[1].Ref // the chat scan

	for _, tt := range []struct {
		name   string
		req    events.ScanQtyRequest
		status int
		code   string
	}{
		{"qty 0", events.ScanQtyRequest{Session: sess, Ref: ref, Qty: 0}, 400, "bad_qty"},
		{"qty 100000", events.ScanQtyRequest{Session: sess, Ref: ref, Qty: 100000}, 400, "bad_qty"},
		{"no ref", events.ScanQtyRequest{Session: sess, Qty: 3}, 400, "bad_request"},
		{"someone else's", events.ScanQtyRequest{Session: sess, Ref: st.ID + "-3", Qty: 3}, 404, "not_found"},
		{"bad session", events.ScanQtyRequest{Session: "nope", Ref: ref, Qty: 3}, 400, "session_invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, rerr := call[events.ScanChangeResponse](t, h, events.OpScanQty, tt.req)
			if rerr == nil || rerr.Status != tt.status || rerr.Code != tt.code {
				t.Fatalf("err=%v, want %d %s", rerr, tt.status, tt.code)
			}
			if s := h.scans(t, st.ID); s[0].Qty != 1 || s[2].Qty != 1 {
				t.Fatalf("scans changed: %+v", s)
			}
		})
	}
	ch, rerr := call[events.ScanChangeResponse](t, h, events.OpScanQty, events.ScanQtyRequest{Session: sess, Ref: ref, Qty: 6})
	if rerr != nil || ch.Scan.Qty != 6 || ch.Count != 7 || !strings.Contains(ch.Message, "6 件") {
		t.Fatalf("set qty=%+v, %v", ch, rerr)
	}
	ch, rerr = call[events.ScanChangeResponse](t, h, events.OpScanUndo, events.ScanUndoRequest{Session: sess, Ref: recent.Scans[0].Ref})
	if rerr != nil || !ch.Scan.Cancelled || ch.Count != 6 {
		t.Fatalf("undo=%+v, %v", ch, rerr)
	}
	if _, rerr := call[events.ScanChangeResponse](t, h, events.OpScanUndo, events.ScanUndoRequest{Session: sess, Ref: recent.Scans[0].Ref}); rerr == nil || rerr.Status != 409 {
		t.Fatalf("second undo: %v, want 409", rerr)
	}
	recent, rerr = call[events.ScanRecentResponse](t, h, events.OpScanRecent, events.ScanRecentRequest{Session: sess})
	if rerr != nil || len(recent.Scans) != 2 || !recent.Scans[0].Cancelled || recent.Scans[0].Editable || recent.Scans[1].Qty != 6 || recent.Count != 6 {
		t.Fatalf("recent after changes=%+v, %v", recent, rerr)
	}
	// Ten minutes after the scan nothing can change. Chat events' CreateTime
	// (the package's at) may run ahead of the harness clock.
	h.advance(time.Unix(at, 0).Sub(h.clock()) + 11*time.Minute)
	sess = h.session(t, "oAnn")
	if _, rerr := call[events.ScanChangeResponse](t, h, events.OpScanQty, events.ScanQtyRequest{Session: sess, Ref: ref, Qty: 2}); rerr == nil || rerr.Status != 409 || rerr.Code != "too_old" {
		t.Fatalf("qty after 11 minutes: %v, want 409 too_old", rerr)
	}
	if sc := h.scans(t, st.ID); sc[0].Qty != 6 {
		t.Fatalf("old scan changed: %+v", sc[0])
	}
	// A closed stocktake's scans are neither listed nor changed.
	if _, err := h.db.CloseStocktake(st.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	recent, rerr = call[events.ScanRecentResponse](t, h, events.OpScanRecent, events.ScanRecentRequest{Session: sess})
	if rerr != nil || len(recent.Scans) != 0 {
		t.Fatalf("recent after close=%+v, %v", recent, rerr)
	}
	// A page scan produced no chat message.
	for _, m := range h.fake.Sent() {
		if strings.Contains(m.Content, "222") {
			t.Fatalf("page scan got a chat reply: %q", m.Content)
		}
	}
}
