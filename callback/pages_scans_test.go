package callback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers"
	"github.com/wxscan/wxscan/workers/fakewechat"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// scanPagesEnv is the staff pages in front of the real workers (store in a
// temporary bbolt file, embedded NATS, fake WeChat API over HTTP), with a
// clock the test moves.
type scanPagesEnv struct {
	*pagesEnv
	DB  *store.DB
	api string // the fake WeChat API

	mu  sync.Mutex
	now time.Time
}

func (e *scanPagesEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *scanPagesEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// MustScanPages serves the pages on the real workers, with the staff
// E001 张三 and E003 王五 (bind code 111111 and 333333, both may scan).
func MustScanPages(tb testing.TB) *scanPagesEnv {
	tb.Helper()
	e := &scanPagesEnv{now: time.Now()}
	fake := fakewechat.New(fakewechat.Config{AppID: eventstest.AppID, AppSecret: "secret"})
	api := httptest.NewServer(fake)
	tb.Cleanup(api.Close)
	e.api = api.URL
	db, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	e.DB = db
	if _, _, err := db.ImportStaff([]store.Staff{
		{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E003", Name: "王五", BindCode: "333333", CanScan: true},
	}); err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := eventstest.MustBus(tb, nil)
	wx, err := wechatapi.New(wechatapi.Config{BaseURL: api.URL, AppID: eventstest.AppID, AppSecret: "secret", Cache: db, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := workers.New(workers.Config{
		AppID: eventstest.AppID, PublicURL: pagesPublicURL, OAuthBase: api.URL,
		DB: db, Bus: bus, WeChat: wx, Now: e.clock, Logger: quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(svc.Stop)
	logs := &pagesLogs{}
	h, err := callback.NewPages(callback.PagesConfig{
		PublicURL: pagesPublicURL,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, bus)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	e.pagesEnv = &pagesEnv{Bus: bus, Server: srv, Logs: logs, Client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	return e
}

// through follows a 302 of the pages to WeChat's authorize page as openid
// and returns the pages' path WeChat sends the browser back to.
func (e *scanPagesEnv) through(tb testing.TB, resp *http.Response, openid string) string {
	tb.Helper()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("status=%d, want 302 to the authorize page", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("openid", openid)
	u.RawQuery, u.Fragment = q.Encode(), ""
	back, err := e.Client.Get(u.String())
	if err != nil {
		tb.Fatal(err)
	}
	back.Body.Close()
	cb, err := url.Parse(back.Header.Get("Location"))
	if err != nil || back.StatusCode != http.StatusFound || !strings.HasPrefix(cb.String(), pagesPublicURL+"/") {
		tb.Fatalf("authorize answered %d to %q: %v", back.StatusCode, cb, err)
	}
	return cb.RequestURI()
}

// Session binds openid to employeeNo (unless employeeNo is "") through
// /bind and returns the session of its /scan page.
func (e *scanPagesEnv) Session(tb testing.TB, openid, employeeNo, bindCode string) string {
	tb.Helper()
	if employeeNo != "" {
		resp, _ := e.Get(tb, "/bind")
		_, page := e.Get(tb, e.through(tb, resp, openid))
		if resp, body := e.Submit(tb, ParsePagesForm(tb, page, "/bind"), map[string]string{"employee_no": employeeNo, "bind_code": bindCode}); resp.StatusCode != http.StatusOK {
			tb.Fatalf("bind %s: %d %s", employeeNo, resp.StatusCode, body)
		}
	}
	resp, _ := e.Get(tb, "/scan")
	resp, _ = e.Get(tb, e.through(tb, resp, openid))
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Path != "/scan" || loc.Query().Get("s") == "" {
		tb.Fatalf("scan page start: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("s")
}

// ChatScan records a scan from the chat menu (a scancode_waitmsg event
// through the workers' consumer), made now.
func (e *scanPagesEnv) ChatScan(tb testing.TB, openid, result string) {
	tb.Helper()
	raw := fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[scan]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[%s]]></ScanResult></ScanCodeInfo></xml>`,
		openid, e.clock().Unix(), result)
	ev, err := events.Parse(eventstest.AppID, []byte(raw), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.Bus.Publish(context.Background(), ev, 0); err != nil {
		tb.Fatal(err)
	}
}

// Recent is GET /api/scans?s=session, which must answer 200.
func (e *scanPagesEnv) Recent(tb testing.TB, session string) events.ScanRecentResponse {
	tb.Helper()
	resp, body := e.Get(tb, "/api/scans?s="+url.QueryEscape(session))
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("recent: %d %s", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		tb.Fatalf("Content-Type=%q, want %q", got, want)
	}
	var r events.ScanRecentResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		tb.Fatalf("recent: %v: %s", err, body)
	}
	if r.Scans == nil {
		tb.Fatalf("recent: scans is null, want a list: %s", body)
	}
	return r
}

// Post sends body as JSON to path and decodes a 200 answer into out.
func (e *scanPagesEnv) Post(tb testing.TB, path string, body any, out any) (int, pagesAPIError) {
	tb.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	resp, raw := e.Do(tb, http.MethodPost, path, "application/json", strings.NewReader(string(b)))
	return pagesAnswer(tb, resp, raw, out)
}

// pagesAPIError is the error answer of /api/scans.
type pagesAPIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func pagesAnswer(tb testing.TB, resp *http.Response, raw string, out any) (int, pagesAPIError) {
	tb.Helper()
	if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		tb.Fatalf("Content-Type=%q, want %q: %s", got, want, raw)
	}
	if resp.StatusCode == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal([]byte(raw), out); err != nil {
				tb.Fatalf("answer: %v: %s", err, raw)
			}
		}
		return resp.StatusCode, pagesAPIError{}
	}
	var e struct {
		Error pagesAPIError `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("error answer %d is not {error:{code,message}}: %v: %s", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, e.Error
}

// scanOf is the stored scan ref of stocktake id, cancelled or not.
func (e *scanPagesEnv) scanOf(tb testing.TB, id, ref string) store.Scan {
	tb.Helper()
	var found *store.Scan
	if err := e.DB.EachScanAll(id, func(s store.Scan) error {
		if s.Ref() == ref {
			found = &s
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	if found == nil {
		tb.Fatalf("no scan %s in %s", ref, id)
	}
	return *found
}

func waitFor(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScanAPIRecentQtyUndo goes through the /scan page's requests on the
// real workers: the recent list (scans from the page and from the chat),
// quantity changes, undo, and what is refused and why.
func TestScanAPIRecentQtyUndo(t *testing.T) {
	e := MustScanPages(t)
	ann := e.Session(t, "oAnn", "E001", "111111")
	bob := e.Session(t, "oBob", "E003", "333333")

	// No stocktake open: an empty list, not an error.
	if r := e.Recent(t, ann); len(r.Scans) != 0 || r.Count != 0 {
		t.Fatalf("recent before any stocktake=%+v, want none", r)
	}
	var sub events.ScanSubmitResponse
	if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "EAN_13,6901234567892", "client_id": "c1"}, &sub); status != 409 || ae.Code != "no_stocktake" {
		t.Fatalf("scan with no stocktake: %d %+v, want 409 no_stocktake", status, ae)
	}

	st, err := e.DB.OpenStocktake("盘点一", e.clock())
	if err != nil {
		t.Fatal(err)
	}
	if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "EAN_13,6901234567892", "client_id": "c1"}, &sub); status != 200 {
		t.Fatalf("page scan: %d %+v", status, ae)
	}
	if sub.Scan == nil || sub.Scan.Code != "6901234567892" || sub.Scan.Qty != 1 || !sub.Scan.Editable || sub.Count != 1 {
		t.Fatalf("page scan answer=%+v (scan %+v)", sub, sub.Scan)
	}
	pageRef := sub.Scan.Ref

	// A scan from the chat menu shows in the same list.
	e.ChatScan(t, "oAnn", "EAN_13,6920000000018")
	var r events.ScanRecentResponse
	waitFor(t, "the chat scan in the list", func() bool { r = e.Recent(t, ann); return len(r.Scans) == 2 })
	if got, want := r.Scans[0].Code+" "+r.Scans[1].Code, "6920000000018 6901234567892"; got != want {
		t.Fatalf("recent codes=%q, want %q (newest first)", got, want)
	}
	if got, want := r.Count, 2; got != want {
		t.Fatalf("count=%d, want %d", got, want)
	}
	chatRef := r.Scans[0].Ref
	if len(e.Recent(t, bob).Scans) != 0 {
		t.Fatalf("bob sees ann's scans")
	}

	// Quantity 12.
	var ch events.ScanChangeResponse
	if status, ae := e.Post(t, callback.ScanQtyAPIPath, events.ScanQtyRequest{Session: ann, Ref: pageRef, Qty: 12}, &ch); status != 200 {
		t.Fatalf("qty 12: %d %+v", status, ae)
	}
	if ch.Scan.Ref != pageRef || ch.Scan.Qty != 12 || ch.Count != 13 || !strings.Contains(ch.Message, "12") {
		t.Fatalf("qty 12 answer=%+v", ch)
	}
	// Out of range: 400 with the workers' words, nothing changed.
	for _, qty := range []int{0, -1, 100000} {
		status, ae := e.Post(t, callback.ScanQtyAPIPath, events.ScanQtyRequest{Session: ann, Ref: pageRef, Qty: qty}, nil)
		if status != 400 || ae.Code != "bad_qty" || ae.Message != "数量要在 1 到 99999 之间。" {
			t.Fatalf("qty %d: %d %+v, want 400 bad_qty", qty, status, ae)
		}
	}
	if s := e.scanOf(t, st.ID, pageRef); s.Qty != 12 || s.Cancelled {
		t.Fatalf("stored scan after refused quantities=%+v, want qty 12", s)
	}

	// Someone else's scan: not found for them, untouched.
	for _, path := range []string{callback.ScanUndoAPIPath, callback.ScanQtyAPIPath} {
		status, ae := e.Post(t, path, events.ScanQtyRequest{Session: bob, Ref: pageRef, Qty: 5}, nil)
		if status != 404 || ae.Code != "not_found" {
			t.Fatalf("%s of another's scan: %d %+v, want 404 not_found", path, status, ae)
		}
	}
	if status, ae := e.Post(t, callback.ScanUndoAPIPath, events.ScanUndoRequest{Session: ann, Ref: st.ID + "-999"}, nil); status != 404 || ae.Code != "not_found" {
		t.Fatalf("undo of no scan: %d %+v, want 404", status, ae)
	}
	if s := e.scanOf(t, st.ID, pageRef); s.Qty != 12 || s.Cancelled {
		t.Fatalf("stored scan after another's change=%+v, want qty 12, not cancelled", s)
	}

	// Undo: kept, marked, out of the count; a second undo is refused.
	if status, ae := e.Post(t, callback.ScanUndoAPIPath, events.ScanUndoRequest{Session: ann, Ref: pageRef}, &ch); status != 200 {
		t.Fatalf("undo: %d %+v", status, ae)
	}
	if !ch.Scan.Cancelled || ch.Scan.Editable || ch.Count != 1 {
		t.Fatalf("undo answer=%+v, want cancelled, count 1", ch)
	}
	if s := e.scanOf(t, st.ID, pageRef); !s.Cancelled {
		t.Fatalf("stored scan after undo=%+v, want cancelled", s)
	}
	if status, ae := e.Post(t, callback.ScanUndoAPIPath, events.ScanUndoRequest{Session: ann, Ref: pageRef}, nil); status != 409 || ae.Code != "not_editable" {
		t.Fatalf("second undo: %d %+v, want 409 not_editable", status, ae)
	}
	r = e.Recent(t, ann)
	if len(r.Scans) != 2 || !r.Scans[1].Cancelled || r.Scans[1].Editable || r.Count != 1 {
		t.Fatalf("recent after undo=%+v", r)
	}

	// Ten minutes on: too old to change.
	e.advance(10*time.Minute + time.Second)
	if status, ae := e.Post(t, callback.ScanQtyAPIPath, events.ScanQtyRequest{Session: ann, Ref: chatRef, Qty: 3}, nil); status != 409 || ae.Code != "too_old" {
		t.Fatalf("qty of an old scan: %d %+v, want 409 too_old", status, ae)
	}
	if r := e.Recent(t, ann); r.Scans[0].Editable {
		t.Fatalf("old scan listed as editable: %+v", r.Scans[0])
	}

	// After the close: nothing can change, nothing is listed.
	e.ChatScan(t, "oAnn", "EAN_13,6930000000015")
	waitFor(t, "the third scan", func() bool { return len(e.Recent(t, ann).Scans) == 3 })
	fresh := e.Recent(t, ann).Scans[0].Ref
	if _, err := e.DB.CloseStocktake(st.ID, e.clock()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{callback.ScanQtyAPIPath, callback.ScanUndoAPIPath} {
		status, ae := e.Post(t, path, events.ScanQtyRequest{Session: ann, Ref: fresh, Qty: 2}, nil)
		if status != 409 || ae.Code != "not_editable" {
			t.Fatalf("%s after close: %d %+v, want 409 not_editable", path, status, ae)
		}
	}
	if s := e.scanOf(t, st.ID, fresh); s.Qty != 1 || s.Cancelled {
		t.Fatalf("stored scan after close=%+v, want qty 1", s)
	}
	if r := e.Recent(t, ann); len(r.Scans) != 0 || r.Count != 0 {
		t.Fatalf("recent after close=%+v, want none", r)
	}
	if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "EAN_13,1", "client_id": "c9"}, nil); status != 409 || ae.Code != "no_stocktake" {
		t.Fatalf("scan after close: %d %+v, want 409 no_stocktake", status, ae)
	}
}

// TestScanAPIRefusals sends the new /api/scans requests every way they can
// be wrong: each answer says why, and no scan changes.
func TestScanAPIRefusals(t *testing.T) {
	e := MustScanPages(t)
	ann := e.Session(t, "oAnn", "E001", "111111")
	stranger := e.Session(t, "oStranger", "", "")
	st, err := e.DB.OpenStocktake("盘点一", e.clock())
	if err != nil {
		t.Fatal(err)
	}
	var sub events.ScanSubmitResponse
	if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "EAN_13,6901234567892", "client_id": "c1"}, &sub); status != 200 || sub.Scan == nil {
		t.Fatalf("page scan: %d %+v %+v", status, ae, sub)
	}
	ref := sub.Scan.Ref
	long := strings.Repeat("x", callback.MaxScanBodyBytes)

	tests := []struct {
		name, method, path, body string
		status                   int
		code, message            string
	}{
		{name: "RecentNoSession", method: "GET", path: "/api/scans", status: 400, code: "session_missing", message: "页面已失效，请从公众号菜单重新打开扫码页。"},
		{name: "RecentLongSession", method: "GET", path: "/api/scans?s=" + strings.Repeat("s", 129), status: 400, code: "session_invalid"},
		{name: "RecentUnknownSession", method: "GET", path: "/api/scans?s=nope", status: 400, code: "session_invalid"},
		{name: "RecentNotBound", method: "GET", path: "/api/scans?s=" + url.QueryEscape(stranger), status: 403, code: "not_bound", message: "你还没有绑定工号，绑定后就能在这里扫码盘点。"},
		{name: "QtyBadJSON", path: callback.ScanQtyAPIPath, body: `{"session":`, status: 400, code: "bad_json", message: "提交的内容无法识别，请刷新页面后重试。"},
		{name: "QtyAsText", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","qty":"5"}`, status: 400, code: "bad_json"},
		{name: "QtyFraction", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","qty":2.5}`, status: 400, code: "bad_json"},
		{name: "QtyTooLong", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","qty":5,"x":"` + long + `"}`, status: 413, code: "too_large"},
		{name: "QtyNoSession", path: callback.ScanQtyAPIPath, body: `{"ref":"` + ref + `","qty":5}`, status: 400, code: "session_missing"},
		{name: "QtyNoRef", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","qty":5}`, status: 400, code: "bad_request", message: "没有指明要改哪一次扫码，请刷新页面。"},
		{name: "QtyLongRef", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + strings.Repeat("r", 65) + `","qty":5}`, status: 400, code: "bad_request"},
		{name: "QtyBadRef", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"nope","qty":5}`, status: 404, code: "not_found"},
		{name: "QtyZero", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","qty":0}`, status: 400, code: "bad_qty", message: "数量要在 1 到 99999 之间。"},
		{name: "QtyTooBig", path: callback.ScanQtyAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","qty":100000}`, status: 400, code: "bad_qty", message: "数量要在 1 到 99999 之间。"},
		{name: "QtyNotBound", path: callback.ScanQtyAPIPath, body: `{"session":"` + stranger + `","ref":"` + ref + `","qty":5}`, status: 403, code: "not_bound"},
		{name: "UndoBadJSON", path: callback.ScanUndoAPIPath, body: `[`, status: 400, code: "bad_json"},
		{name: "UndoTooLong", path: callback.ScanUndoAPIPath, body: `{"session":"` + ann + `","ref":"` + ref + `","x":"` + long + `"}`, status: 413, code: "too_large", message: "提交的内容太长了。"},
		{name: "UndoNoSession", path: callback.ScanUndoAPIPath, body: `{"ref":"` + ref + `"}`, status: 400, code: "session_missing"},
		{name: "UndoLongSession", path: callback.ScanUndoAPIPath, body: `{"session":"` + strings.Repeat("s", 129) + `","ref":"` + ref + `"}`, status: 400, code: "session_invalid"},
		{name: "UndoUnknownSession", path: callback.ScanUndoAPIPath, body: `{"session":"nope","ref":"` + ref + `"}`, status: 400, code: "session_invalid"},
		{name: "UndoNoRef", path: callback.ScanUndoAPIPath, body: `{"session":"` + ann + `"}`, status: 400, code: "bad_request"},
		{name: "UndoNotBound", path: callback.ScanUndoAPIPath, body: `{"session":"` + stranger + `","ref":"` + ref + `"}`, status: 403, code: "not_bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, raw := e.Do(t, method, tt.path, "application/json", body)
			status, ae := pagesAnswer(t, resp, raw, nil)
			if status != tt.status || ae.Code != tt.code {
				t.Fatalf("answer %d %+v, want %d %s", status, ae, tt.status, tt.code)
			}
			if tt.message != "" && ae.Message != tt.message {
				t.Fatalf("message=%q, want %q", ae.Message, tt.message)
			}
			if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
				t.Fatalf("Cache-Control=%q, want %q", got, want)
			}
			if s := e.scanOf(t, st.ID, ref); s.Qty != 1 || s.Cancelled {
				t.Fatalf("stored scan=%+v, want qty 1, not cancelled", s)
			}
		})
	}
	if strings.Contains(e.Logs.String(), ann) {
		t.Fatalf("a session is in the logs:\n%s", e.Logs.String())
	}
}

// TestScanPageSaysWhatIsTrue opens /scan on the real workers with no
// stocktake, a scoped one the person is not in, and one that covers them:
// the page says which, and its scan controls are off only when no
// stocktake is open.
func TestScanPageSaysWhatIsTrue(t *testing.T) {
	e := MustScanPages(t)
	ann := e.Session(t, "oAnn", "E001", "111111")
	controls := regexp.MustCompile(`<input id="code"[^>]*>|<button type="submit"[^>]*>`)
	check := func(t *testing.T, want string, disabled bool) string {
		t.Helper()
		resp, page := e.Get(t, "/scan?s="+url.QueryEscape(ann))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%d: %s", resp.StatusCode, page)
		}
		CheckPagesHTML(t, resp, page)
		if !strings.Contains(page, want) {
			t.Fatalf("page does not say %q:\n%s", want, page)
		}
		if strings.Contains(page, "扫码没有记录") {
			t.Fatalf("page says 扫码没有记录 to someone who only opened it")
		}
		ctl := controls.FindAllString(page, -1)
		if len(ctl) != 2 {
			t.Fatalf("typed input and its button: %q", ctl)
		}
		for _, c := range ctl {
			if got := strings.Contains(c, " disabled"); got != disabled {
				t.Fatalf("%s: disabled=%v, want %v", c, got, disabled)
			}
		}
		if got, want := strings.Contains(page, `data-open="1"`), !disabled; got != want {
			t.Fatalf("data-open=1 is %v, want %v", got, want)
		}
		return page
	}
	t.Run("NoStocktake", func(t *testing.T) {
		check(t, "现在没有进行中的盘点，不能扫码。", true)
	})
	scoped, err := e.DB.OpenStocktakeSpec(store.StocktakeSpec{Name: "B 区", Locations: []string{"B-"}}, e.clock())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ScopedNoLocation", func(t *testing.T) {
		check(t, "请先扫库位码，再扫商品。", false)
	})
	t.Run("ScopedElsewhere", func(t *testing.T) {
		if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "QR_CODE,LOC:A-01", "client_id": "l1"}, nil); status != 200 {
			t.Fatalf("location scan: %d %+v", status, ae)
		}
		check(t, "库位 A-01 不在进行中的盘点范围内", false)
	})
	t.Run("Covered", func(t *testing.T) {
		if status, ae := e.Post(t, "/api/scans", map[string]string{"session": ann, "result": "QR_CODE,LOC:B-07", "client_id": "l2"}, nil); status != 200 {
			t.Fatalf("location scan: %d %+v", status, ae)
		}
		page := check(t, "盘点：B 区", false)
		if !strings.Contains(page, `<span id="loc">B-07</span>`) {
			t.Fatalf("page does not show the location B-07")
		}
	})
	if _, err := e.DB.CloseStocktake(scoped.ID, e.clock()); err != nil {
		t.Fatal(err)
	}
	t.Run("Closed", func(t *testing.T) {
		check(t, "现在没有进行中的盘点，不能扫码。", true)
	})
}

// TestScanPageNotBound opens /scan on the real workers as someone who is
// not bound: 403, the way to bind, and no word of a scan not recorded.
func TestScanPageNotBound(t *testing.T) {
	e := MustScanPages(t)
	s := e.Session(t, "oNew", "", "")
	resp, page := e.Get(t, "/scan?s="+url.QueryEscape(s))
	if got, want := resp.StatusCode, http.StatusForbidden; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	CheckPagesHTML(t, resp, page)
	if !strings.Contains(page, "你还没有绑定工号，绑定后就能在这里扫码盘点。") || !strings.Contains(page, `href="/bind"`) {
		t.Fatalf("page does not say how to bind:\n%s", page)
	}
	if strings.Contains(page, "扫码没有记录") {
		t.Fatalf("page says 扫码没有记录 to someone who only opened it:\n%s", page)
	}
}
