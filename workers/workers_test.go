package workers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers"
	"github.com/wxscan/wxscan/workers/fakewechat"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

const publicURL = "https://wx.example.com"

// harness is a workers Service on real parts: embedded NATS with JetStream,
// bbolt in a temp dir, and the fake WeChat API over loopback HTTP.
type harness struct {
	svc  *workers.Service
	cfg  workers.Config
	db   *store.DB
	bus  *events.Bus
	fake *fakewechat.Server
	api  *httptest.Server
	mu   sync.Mutex
	now  time.Time
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// MustHarness starts a Service on real parts; opts adjust its Config.
func MustHarness(tb testing.TB, opts ...func(*workers.Config)) *harness {
	tb.Helper()
	h := &harness{now: time.Now()}
	h.fake = fakewechat.New(fakewechat.Config{AppID: eventstest.AppID, AppSecret: "secret"})
	h.api = httptest.NewServer(h.fake)
	tb.Cleanup(h.api.Close)
	db, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	h.db = db
	h.bus = eventstest.MustBus(tb, nil)
	wx, err := wechatapi.New(wechatapi.Config{BaseURL: h.api.URL, AppID: eventstest.AppID, AppSecret: "secret", Cache: db, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := workers.Config{
		AppID: eventstest.AppID, PublicURL: publicURL, OAuthBase: h.api.URL,
		DB: db, Bus: h.bus, WeChat: wx, Now: h.clock, Logger: quiet(),
		Consumer: events.ConsumerConfig{Backoff: func(int) time.Duration { return 50 * time.Millisecond }},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.cfg = cfg
	h.svc, err = workers.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.svc.Stop)
	if _, _, err := db.ImportStaff([]store.Staff{
		{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E002", Name: "李四", BindCode: "222222", CanScan: false},
	}); err != nil {
		tb.Fatal(err)
	}
	return h
}

// authorize plays the WeChat client on the authorize page: it follows the
// URL the workers built and returns the code and state of the redirect.
func (h *harness) authorize(tb testing.TB, authorizeURL, openid string, snapshot bool) (code, state string) {
	tb.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("openid", openid)
	if snapshot {
		q.Set("snapshot", "1")
	}
	u.RawQuery, u.Fragment = q.Encode(), ""
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u.String())
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		tb.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, publicURL+"/oauth/callback"; got != want {
		tb.Fatalf("redirect_uri=%q, want %q", got, want)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func call[Resp any](tb testing.TB, h *harness, op string, req any) (Resp, *events.RPCError) {
	tb.Helper()
	var resp Resp
	err := h.bus.Call(context.Background(), op, req, &resp)
	var rerr *events.RPCError
	if errors.As(err, &rerr) {
		return resp, rerr
	}
	if err != nil {
		tb.Fatalf("%s: %v", op, err)
	}
	return resp, nil
}

// session runs /bind's OAuth round trip for openid and returns the session.
func (h *harness) session(tb testing.TB, openid string) string {
	tb.Helper()
	start, rerr := call[events.BindStartResponse](tb, h, events.OpBindStart, events.BindStartRequest{})
	if rerr != nil {
		tb.Fatal(rerr)
	}
	code, state := h.authorize(tb, start.AuthorizeURL, openid, false)
	sess, rerr := call[events.SessionResponse](tb, h, events.OpOAuthCallback, events.OAuthCallbackRequest{Code: code, State: state})
	if rerr != nil {
		tb.Fatal(rerr)
	}
	return sess.Session
}

func (h *harness) bind(tb testing.TB, openid, emp, code string) {
	tb.Helper()
	if _, rerr := call[events.BindSubmitResponse](tb, h, events.OpBindSubmit,
		events.BindSubmitRequest{Session: h.session(tb, openid), EmployeeNo: emp, BindCode: code}); rerr != nil {
		tb.Fatal(rerr)
	}
}

var ct int64 = 1_700_000_000

func scanEvent(tb testing.TB, openid, result string) events.Event {
	tb.Helper()
	ct++
	raw := fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[scan]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[%s]]></ScanResult></ScanCodeInfo></xml>`, openid, ct, result)
	e, err := events.Parse(eventstest.AppID, []byte(raw), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func plainEvent(tb testing.TB, openid, event string) events.Event {
	tb.Helper()
	ct++
	raw := fmt.Sprintf(`<xml><ToUserName>gh_1</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime><MsgType>event</MsgType><Event>%s</Event></xml>`, openid, ct, event)
	e, err := events.Parse(eventstest.AppID, []byte(raw), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// sentTo waits for n custom-send messages to openid and returns them.
func (h *harness) sentTo(tb testing.TB, openid string, n int) []string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, m := range h.fake.Sent() {
			if m.ToUser == openid {
				got = append(got, m.Content)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("messages to %s: %q, want %d", openid, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) publish(tb testing.TB, e events.Event) {
	tb.Helper()
	if _, err := h.bus.Publish(context.Background(), e, 0); err != nil {
		tb.Fatal(err)
	}
}

func (h *harness) openStocktake(tb testing.TB) store.Stocktake {
	tb.Helper()
	st, err := h.db.OpenStocktake("盘点一", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func (h *harness) scans(tb testing.TB, id string) []store.Scan {
	tb.Helper()
	s, err := h.db.Scans(id)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestBindThenScanFlow(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)

	// subscribe: welcome with the bind link (custom send: nobody waits).
	h.publish(t, plainEvent(t, "oAnn", "subscribe"))
	if got := h.sentTo(t, "oAnn", 1)[0]; !strings.Contains(got, publicURL+"/bind") {
		t.Fatalf("welcome %q lacks the bind link", got)
	}
	h.bind(t, "oAnn", "E001", "111111")
	if b, err := h.db.BindingByOpenID("oAnn"); err != nil || b.EmployeeNo != "E001" || b.State != store.StateActive {
		t.Fatalf("binding=%+v, %v", b, err)
	}

	h.publish(t, scanEvent(t, "oAnn", "QR_CODE,LOC:A-01"))
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,6901234567892"))
	h.publish(t, scanEvent(t, "oAnn", "6901234567893")) // no comma: type is ScanType
	msgs := h.sentTo(t, "oAnn", 4)
	if !strings.Contains(msgs[1], "A-01") {
		t.Fatalf("location reply %q", msgs[1])
	}
	if !strings.Contains(msgs[2], "6901234567892") || !strings.Contains(msgs[2], "1 件") {
		t.Fatalf("scan reply %q lacks code and count", msgs[2])
	}
	if !strings.Contains(msgs[3], "2 件") {
		t.Fatalf("second scan reply %q lacks the running count", msgs[3])
	}
	scans := h.scans(t, st.ID)
	if got, want := len(scans), 2; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	s := scans[0]
	if s.CodeType != "EAN_13" || s.Code != "6901234567892" || s.Location != "A-01" || s.EmployeeNo != "E001" || s.Qty != 1 || s.OpenID != "oAnn" || s.EventID == "" {
		t.Fatalf("scan=%+v", s)
	}
	if got, want := scans[1].CodeType, "barcode"; got != want {
		t.Fatalf("code type without comma=%q, want %q (ScanType)", got, want)
	}
}

func TestScanRefusals(t *testing.T) {
	h := MustHarness(t)
	h.bind(t, "oBob", "E002", "222222") // bound, but may not scan
	h.bind(t, "oAnn", "E001", "111111")

	// No stocktake open.
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,1"))
	if got := h.sentTo(t, "oAnn", 1)[0]; !strings.Contains(got, "没有进行中的盘点") {
		t.Fatalf("no-stocktake reply %q", got)
	}
	st := h.openStocktake(t)
	// Not bound.
	h.publish(t, scanEvent(t, "oStranger", "EAN_13,1"))
	if got := h.sentTo(t, "oStranger", 1)[0]; !strings.Contains(got, "绑定") || !strings.Contains(got, publicURL+"/bind") {
		t.Fatalf("not-bound reply %q", got)
	}
	// Not allowed.
	h.publish(t, scanEvent(t, "oBob", "EAN_13,1"))
	if got := h.sentTo(t, "oBob", 1)[0]; !strings.Contains(got, "没有盘点权限") {
		t.Fatalf("not-allowed reply %q", got)
	}
	// Unsubscribe suspends; scans are refused; subscribe restores.
	h.publish(t, plainEvent(t, "oAnn", "unsubscribe"))
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,2"))
	if got := h.sentTo(t, "oAnn", 2)[1]; !strings.Contains(got, "绑定") {
		t.Fatalf("suspended reply %q", got)
	}
	h.publish(t, plainEvent(t, "oAnn", "subscribe"))
	if got := h.sentTo(t, "oAnn", 3)[2]; !strings.Contains(got, "欢迎回来") {
		t.Fatalf("welcome back %q", got)
	}
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,3"))
	h.sentTo(t, "oAnn", 4)
	if got, want := len(h.scans(t, st.ID)), 1; got != want {
		t.Fatalf("scans=%d, want %d (only the one after resubscribing)", got, want)
	}
}

func TestRedeliveredScanRecordsOnce(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	e := scanEvent(t, "oAnn", "EAN_13,6901234567892")
	for range 3 { // JetStream redelivers the same event
		errs := h.svc.HandleBatch(context.Background(), []events.Event{e, e})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := len(h.scans(t, st.ID)), 1; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	time.Sleep(100 * time.Millisecond)
	if got, want := len(h.sentTo(t, "oAnn", 1)), 1; got != want {
		t.Fatalf("replies=%d, want %d", got, want)
	}
}

func TestReplyFailsTransientlyThenIsSentOnce(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	h.fake.FailNext("/cgi-bin/message/custom/send", 503, 2) // WeChat briefly down
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,6901234567892"))
	h.sentTo(t, "oAnn", 1)
	time.Sleep(300 * time.Millisecond)
	if got, want := len(h.sentTo(t, "oAnn", 1)), 1; got != want {
		t.Fatalf("replies=%d, want %d", got, want)
	}
	if got, want := len(h.scans(t, st.ID)), 1; got != want {
		t.Fatalf("scans=%d, want %d (retries must not record again)", got, want)
	}
	h.outboxEmpties(t)
}

// TestRepliesToOnePersonKeepTheirOrderAfterAFailure: when a person's first
// reply in a batch fails, the later ones wait and go out after it.
func TestRepliesToOnePersonKeepTheirOrderAfterAFailure(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	batch := []events.Event{scanEvent(t, "oAnn", "EAN_13,1111"), scanEvent(t, "oAnn", "EAN_13,2222")}
	h.fake.FailNext("/cgi-bin/message/custom/send", 503, 1)
	errs := h.svc.HandleBatch(context.Background(), batch)
	if errs[0] == nil || errs[1] == nil || events.IsPermanent(errs[0]) || events.IsPermanent(errs[1]) {
		t.Fatalf("errs=%v, want transient errors for both replies", errs)
	}
	if got, want := h.fake.Calls("/cgi-bin/message/custom/send"), 1; got != want {
		t.Fatalf("custom/send calls=%d, want %d: oAnn's second reply must wait for the first", got, want)
	}
	// The redelivery sends both, in order, and records nothing new.
	if errs := h.svc.HandleBatch(context.Background(), batch); errs[0] != nil || errs[1] != nil {
		t.Fatalf("redelivery errs=%v", errs)
	}
	got := h.sentTo(t, "oAnn", 2)
	if !strings.Contains(got[0], "1111") || !strings.Contains(got[1], "2222") {
		t.Fatalf("oAnn's replies=%q, want 1111 then 2222", got)
	}
}

func TestReplyGoesPassiveWhenTheCallbackWaits(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	e := scanEvent(t, "oAnn", "EAN_13,6901234567892")
	r, err := h.bus.Publish(context.Background(), e, 3*time.Second) // as the callback does
	if err != nil {
		t.Fatal(err)
	}
	if r == nil || !strings.Contains(r.Content, "6901234567892") || r.ToUser != "oAnn" {
		t.Fatalf("passive reply=%+v", r)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range h.fake.Sent() {
		if m.ToUser == "oAnn" && strings.Contains(m.Content, "6901234567892") {
			t.Fatalf("reply sent twice: passive and custom send %q", m.Content)
		}
	}
}

func TestBindRefusals(t *testing.T) {
	h := MustHarness(t)
	start := func() events.BindStartResponse {
		s, rerr := call[events.BindStartResponse](t, h, events.OpBindStart, events.BindStartRequest{})
		if rerr != nil {
			t.Fatal(rerr)
		}
		return s
	}
	exchange := func(code, state string) (events.SessionResponse, *events.RPCError) {
		return call[events.SessionResponse](t, h, events.OpOAuthCallback, events.OAuthCallbackRequest{Code: code, State: state})
	}
	t.Run("authorize URL", func(t *testing.T) {
		u := start().AuthorizeURL
		want := h.api.URL + "/connect/oauth2/authorize?appid=" + eventstest.AppID + "&redirect_uri=" + url.QueryEscape(publicURL+"/oauth/callback") + "&response_type=code&scope=snsapi_base&state="
		if !strings.HasPrefix(u, want) || !strings.HasSuffix(u, "#wechat_redirect") {
			t.Fatalf("authorize url=%q, want prefix %q", u, want)
		}
	})
	t.Run("double redirect is idempotent, state reuse refused", func(t *testing.T) {
		code, state := h.authorize(t, start().AuthorizeURL, "oDup", false)
		a, rerr := exchange(code, state)
		if rerr != nil {
			t.Fatal(rerr)
		}
		b, rerr := exchange(code, state) // WeChat redirected twice
		if rerr != nil {
			t.Fatalf("second redirect: %v", rerr)
		}
		if a.Session != b.Session || a.Session == "" {
			t.Fatalf("sessions %q and %q, want the same one twice", a.Session, b.Session)
		}
		if got, want := h.fake.Calls("/sns/oauth2/access_token"), 1; got != want {
			t.Fatalf("exchanges=%d, want %d", got, want)
		}
		code2 := h.fake.IssueCode("oDup", false)
		if _, rerr := exchange(code2, state); rerr == nil || rerr.Status != 400 || rerr.Code != "state_used" {
			t.Fatalf("reused state: %v, want 400 state_used", rerr)
		}
	})
	t.Run("expired state", func(t *testing.T) {
		code, state := h.authorize(t, start().AuthorizeURL, "oLate", false)
		h.advance(11 * time.Minute)
		defer h.advance(-11 * time.Minute)
		if _, rerr := exchange(code, state); rerr == nil || rerr.Status != 410 {
			t.Fatalf("expired state: %v, want 410", rerr)
		}
	})
	t.Run("missing code", func(t *testing.T) {
		if _, rerr := exchange("", start().AuthorizeURL); rerr == nil || rerr.Status != 400 {
			t.Fatalf("missing code: %v, want 400", rerr)
		}
	})
	t.Run("invalid code 40029", func(t *testing.T) {
		u, _ := url.Parse(start().AuthorizeURL)
		if _, rerr := exchange("nonsense", u.Query().Get("state")); rerr == nil || rerr.Code != "code_invalid" || rerr.Status != 400 {
			t.Fatalf("invalid code: %v", rerr)
		}
	})
	t.Run("used code 40163", func(t *testing.T) {
		code := h.fake.IssueCode("oUsed", false)
		client, _ := wechatapi.New(wechatapi.Config{BaseURL: h.api.URL, AppID: eventstest.AppID, AppSecret: "secret"})
		if _, err := client.OAuthExchange(context.Background(), code); err != nil { // used elsewhere first
			t.Fatal(err)
		}
		u, _ := url.Parse(start().AuthorizeURL)
		if _, rerr := exchange(code, u.Query().Get("state")); rerr == nil || rerr.Code != "code_used" || rerr.Status != 400 {
			t.Fatalf("used code: %v", rerr)
		}
	})
	t.Run("snapshot user", func(t *testing.T) {
		code, state := h.authorize(t, start().AuthorizeURL, "oSnap", true)
		if _, rerr := exchange(code, state); rerr == nil || rerr.Status != 403 || rerr.Code != "snapshot_user" {
			t.Fatalf("snapshot: %v, want 403", rerr)
		}
	})
	t.Run("expired session", func(t *testing.T) {
		sess := h.session(t, "oSlow")
		h.advance(31 * time.Minute)
		defer h.advance(-31 * time.Minute)
		_, rerr := call[events.BindSubmitResponse](t, h, events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: "E001", BindCode: "111111"})
		if rerr == nil || rerr.Status != 410 {
			t.Fatalf("expired session: %v, want 410", rerr)
		}
	})
}

func TestBindLockout(t *testing.T) {
	h := MustHarness(t)
	sess := h.session(t, "oMallory")
	submit := func(code string) *events.RPCError {
		_, rerr := call[events.BindSubmitResponse](t, h, events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: "E001", BindCode: code})
		return rerr
	}
	for i := 1; i <= 4; i++ {
		if rerr := submit("000000"); rerr == nil || rerr.Status != 400 {
			t.Fatalf("wrong code #%d: %v, want 400", i, rerr)
		}
	}
	if rerr := submit("000000"); rerr == nil || rerr.Status != 429 {
		t.Fatalf("5th wrong code: %v, want 429", rerr)
	}
	if rerr := submit("111111"); rerr == nil || rerr.Status != 429 {
		t.Fatalf("right code while locked: %v, want 429", rerr)
	}
	h.advance(16 * time.Minute)
	sess = h.session(t, "oAnn")
	if rerr := submit("111111"); rerr != nil {
		t.Fatalf("right code after the lockout: %v", rerr)
	}
	if b, err := h.db.BindingByOpenID("oAnn"); err != nil || b.EmployeeNo != "E001" {
		t.Fatalf("binding=%+v, %v", b, err)
	}
}

func TestBindingMovesToTheNewOpenID(t *testing.T) {
	h := MustHarness(t)
	h.bind(t, "oOldPhone", "E001", "111111")
	h.bind(t, "oNewPhone", "E001", "111111")
	if _, err := h.db.BindingByOpenID("oOldPhone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old binding still there: %v", err)
	}
	bs, _ := h.db.Bindings()
	if got, want := len(bs), 1; got != want {
		t.Fatalf("bindings=%d, want %d", got, want)
	}
}

func TestScanPageAndSubmit(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	sess := h.session(t, "oAnn")
	page, rerr := call[events.ScanPageResponse](t, h, events.OpScanPage, events.ScanPageRequest{Session: sess, URL: publicURL + "/scan?s=" + sess})
	if rerr != nil {
		t.Fatal(rerr)
	}
	if page.AppID != eventstest.AppID || page.Signature == "" || page.Name != "张三" || page.Stocktake != "盘点一" {
		t.Fatalf("scan page=%+v", page)
	}
	req := events.ScanSubmitRequest{Session: sess, Result: "EAN_13,6901234567892", ClientID: "c1"}
	for range 2 { // a resubmit records once
		if _, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit, req); rerr != nil {
			t.Fatal(rerr)
		}
	}
	if got, want := len(h.scans(t, st.ID)), 1; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	stranger := h.session(t, "oStranger")
	if _, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit, events.ScanSubmitRequest{Session: stranger, Result: "X", ClientID: "c2"}); rerr == nil || rerr.Status != 403 {
		t.Fatalf("unbound page scan: %v, want 403", rerr)
	}
}

func TestTokenSurvivesRestart(t *testing.T) {
	h := MustHarness(t)
	path := h.db.Path()
	ctx := context.Background()
	wx, _ := wechatapi.New(wechatapi.Config{BaseURL: h.api.URL, AppID: eventstest.AppID, AppSecret: "secret", Cache: h.db})
	if err := wx.SendText(ctx, "oAnn", "hi"); err != nil {
		t.Fatal(err)
	}
	h.svc.Stop()
	h.db.Close()
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wx2, _ := wechatapi.New(wechatapi.Config{BaseURL: h.api.URL, AppID: eventstest.AppID, AppSecret: "secret", Cache: db})
	if err := wx2.SendText(ctx, "oAnn", "hi again"); err != nil {
		t.Fatal(err)
	}
	if got, want := h.fake.Calls("/cgi-bin/stable_token"), 1; got != want {
		t.Fatalf("cgi-bin/stable_token calls=%d, want %d (the token is persisted)", got, want)
	}
}

func TestTokenRevokedOnceIsRefreshedAndRetried(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	h.publish(t, plainEvent(t, "oAnn", "subscribe"))
	h.sentTo(t, "oAnn", 1)
	h.fake.RevokeTokens() // the next call with the old token answers 40001
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,1"))
	h.sentTo(t, "oAnn", 2)
	if n, f := h.fake.StableTokenCalls(); n != 2 || f != 0 {
		t.Fatalf("cgi-bin/stable_token calls (normal, forced)=(%d, %d), want (2, 0): WeChat has a new token, nothing to force", n, f)
	}
}

func TestParseScanResult(t *testing.T) {
	for _, tt := range []struct{ name, scanType, result, typ, code string }{
		{"barcode", "barcode", "EAN_13,6901234567892", "EAN_13", "6901234567892"},
		{"no comma", "qrcode", "https://x.example/1", "qrcode", "https://x.example/1"},
		{"location after prefix", "qrcode", "QR_CODE,LOC:A-01", "QR_CODE", "LOC:A-01"},
		{"comma in code", "barcode", "CODE_128,A,B", "CODE_128", "A,B"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			typ, code := workers.ParseScanResult(tt.scanType, tt.result)
			if typ != tt.typ || code != tt.code {
				t.Fatalf("got %q,%q want %q,%q", typ, code, tt.typ, tt.code)
			}
		})
	}
}

// TestRepliesToOnePersonKeepTheirOrderAcrossBatches: a batch's replies may
// go out while the batch before it is still delivering, but a person's
// reply never overtakes their reply from an earlier batch; another person's
// does not wait.
func TestRepliesToOnePersonKeepTheirOrderAcrossBatches(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	h.bind(t, "oBob", "E002", "222222")
	ctx := context.Background()
	finish1 := h.svc.RecordBatch(ctx, []events.Event{scanEvent(t, "oAnn", "EAN_13,1111")})
	finish2 := h.svc.RecordBatch(ctx, []events.Event{scanEvent(t, "oAnn", "EAN_13,2222"), scanEvent(t, "oBob", "EAN_13,3333")})
	errs2 := make(chan []error, 1)
	go func() { errs2 <- finish2() }()
	h.sentTo(t, "oBob", 1) // the second batch is delivering
	time.Sleep(50 * time.Millisecond)
	for _, m := range h.fake.Sent() {
		if m.ToUser == "oAnn" {
			t.Fatalf("oAnn got %q before the first batch delivered", m.Content)
		}
	}
	if errs := finish1(); errs[0] != nil {
		t.Fatalf("first batch errs=%v", errs)
	}
	if errs := <-errs2; errs[0] != nil || errs[1] != nil {
		t.Fatalf("second batch errs=%v", errs)
	}
	got := h.sentTo(t, "oAnn", 2)
	if len(got) != 2 || !strings.Contains(got[0], "1111") || !strings.Contains(got[1], "2222") {
		t.Fatalf("oAnn's replies %q, want 1111 then 2222", got)
	}
}

// Delivered replies leave the outbox in the next batch's transaction, or on
// their own when no batch comes; an undelivered one stays.
func TestDeliveredRepliesLeaveTheOutbox(t *testing.T) {
	h := MustHarness(t)
	h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	ctx := context.Background()
	first := scanEvent(t, "oAnn", "EAN_13,1111")
	if errs := h.svc.HandleBatch(ctx, []events.Event{first}); errs[0] != nil {
		t.Fatalf("errs=%v", errs)
	}
	h.fake.FailNext("/cgi-bin/message/custom/send", 503, 1)
	second := scanEvent(t, "oAnn", "EAN_13,2222")
	finish := h.svc.RecordBatch(ctx, []events.Event{second})
	has := func(id string) bool {
		var b []byte
		if err := h.db.View(func(tx *store.Tx) error {
			var err error
			b, err = tx.Outbox(id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return b != nil
	}
	if has(first.ID) {
		t.Fatal("the first batch's delivered reply is still in the outbox after the next batch's transaction")
	}
	if !has(second.ID) {
		t.Fatal("the second batch's reply is not in the outbox before delivery")
	}
	if errs := finish(); errs[0] == nil {
		t.Fatal("the second reply was delivered, want a transient failure")
	}
	time.Sleep(1300 * time.Millisecond) // past the one-second cleanup of delivered replies
	if !has(second.ID) {
		t.Fatal("the undelivered reply left the outbox")
	}
	if errs := h.svc.HandleBatch(ctx, []events.Event{second}); errs[0] != nil {
		t.Fatalf("redelivery errs=%v", errs)
	}
	h.outboxEmpties(t)
	if got := h.sentTo(t, "oAnn", 2); len(got) != 2 {
		t.Fatalf("oAnn's replies %q, want 2", got)
	}
}

// TestEventBackWhileItsReplyIsInHand: an event comes back (it outlasted
// AckWait in the consumer's buffer, or its ack was lost) and its batch is
// recorded while an earlier batch still holds its reply. The reply goes out
// once: the later copy sends it only if the earlier delivery failed.
func TestEventBackWhileItsReplyIsInHand(t *testing.T) {
	for _, tt := range []struct {
		name       string
		firstFails bool
	}{
		{name: "earlier delivery succeeds"},
		{name: "earlier delivery fails", firstFails: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := MustHarness(t)
			st := h.openStocktake(t)
			h.bind(t, "oAnn", "E001", "111111")
			ctx := context.Background()
			e := scanEvent(t, "oAnn", "EAN_13,1111")
			if tt.firstFails {
				h.fake.FailNext("/cgi-bin/message/custom/send", 503, 1)
			}
			finish1 := h.svc.RecordBatch(ctx, []events.Event{e})
			finish2 := h.svc.RecordBatch(ctx, []events.Event{e}) // the copy that came back
			errs2 := make(chan []error, 1)
			go func() { errs2 <- finish2() }()
			errs1 := finish1()
			if got := errs1[0] != nil; got != tt.firstFails {
				t.Fatalf("first delivery errs=%v, want failure=%v", errs1, tt.firstFails)
			}
			if errs := <-errs2; errs[0] != nil {
				t.Fatalf("second copy errs=%v", errs)
			}
			time.Sleep(100 * time.Millisecond)
			if got := h.sentTo(t, "oAnn", 1); len(got) != 1 {
				t.Fatalf("oAnn got %d replies %q, want 1", len(got), got)
			}
			if got, want := len(h.scans(t, st.ID)), 1; got != want {
				t.Fatalf("scans=%d, want %d", got, want)
			}
			h.outboxEmpties(t)
		})
	}
}
