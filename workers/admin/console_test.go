package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

// consoleEnv is a console served over loopback HTTP beside a real admin API
// (admintest: bbolt, embedded NATS, fake WeChat), sharing its store.
type consoleEnv struct {
	*admintest.Env
	Console *admin.Console
	Base    string // the console server's base URL
	Origin  string // the console's own origin (WXSCAN_PUBLIC_URL's)
}

// mustConsole starts a console with token over e's store, bus and WeChat
// client, with WXSCAN_PUBLIC_URL publicURL (admintest.PublicURL when
// empty).
func mustConsole(tb testing.TB, token, publicURL string) *consoleEnv {
	tb.Helper()
	e := admintest.MustServer(tb, token)
	if publicURL == "" {
		publicURL = admintest.PublicURL
	}
	c := admin.NewConsole(admin.Config{Token: token, DB: e.DB, Bus: e.Bus, WeChat: e.WeChat, PublicURL: publicURL,
		Now: e.Clock.Now, Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle(admin.ConsolePrefix, c)
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() { c.Close(); srv.Close() })
	u, _ := url.Parse(publicURL)
	return &consoleEnv{Env: e, Console: c, Base: srv.URL, Origin: u.Scheme + "://" + u.Host}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type consoleResp struct {
	code   int
	header http.Header
	body   string
}

// send sends one request to the console with the session cookie (when not
// empty) and Origin (when not empty).
func (e *consoleEnv) send(tb testing.TB, method, path, cookie, origin, contentType string, body io.Reader) consoleResp {
	tb.Helper()
	req, err := http.NewRequest(method, e.Base+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return consoleResp{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *consoleEnv) form(tb testing.TB, path, cookie, origin string, vals url.Values) consoleResp {
	tb.Helper()
	return e.send(tb, http.MethodPost, path, cookie, origin, "application/x-www-form-urlencoded", strings.NewReader(vals.Encode()))
}

// multipartBody is a multipart form with the given fields and one file.
func multipartBody(tb testing.TB, fields map[string]string, fileField, fileName, content string) (string, io.Reader) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	if fileField != "" {
		fw, err := mw.CreateFormFile(fileField, fileName)
		if err != nil {
			tb.Fatal(err)
		}
		io.WriteString(fw, content)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

// signIn signs in and returns the session cookie's value.
func (e *consoleEnv) signIn(tb testing.TB) string {
	tb.Helper()
	r := e.form(tb, "/console/login", "", e.Origin, url.Values{"token": {e.Token}})
	if got, want := r.code, http.StatusSeeOther; got != want {
		tb.Fatalf("sign in: status=%d, want %d: %s", got, want, r.body)
	}
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == admin.SessionCookie && ck.Value != "" {
			return ck.Value
		}
	}
	tb.Fatalf("sign in set no session cookie: %v", r.header)
	return ""
}

func TestConsoleOff(t *testing.T) {
	e := mustConsole(t, "", "")
	for _, p := range []string{"/console/", "/console/login", "/console/static/console.css", "/console/stocktakes/ST0001"} {
		if got, want := e.send(t, http.MethodGet, p, "", "", "", nil).code, http.StatusNotFound; got != want {
			t.Errorf("GET %s with no admin token: status=%d, want %d", p, got, want)
		}
	}
	r := e.form(t, "/console/login", "", e.Origin, url.Values{"token": {""}})
	if got, want := r.code, http.StatusNotFound; got != want {
		t.Errorf("POST /console/login with no admin token: status=%d, want %d", got, want)
	}
}

func TestConsoleSignIn(t *testing.T) {
	e := mustConsole(t, token, "")

	// Pages send a browser without a session to the sign-in form; data is 403.
	r := e.send(t, http.MethodGet, "/console/", "", "", "", nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/login" {
		t.Fatalf("GET /console/ without session: %d %q, want 303 to /console/login", r.code, r.header.Get("Location"))
	}
	for _, p := range []string{"/console/stocktakes/ST0001/export?kind=scans&format=csv", "/console/stocktakes/ST0001/events", "/console/backup"} {
		if got, want := e.send(t, http.MethodGet, p, "", "", "", nil).code, http.StatusForbidden; got != want {
			t.Errorf("GET %s without session: status=%d, want %d", p, got, want)
		}
	}
	r = e.send(t, http.MethodGet, "/console/login", "", "", "", nil)
	if r.code != http.StatusOK || !strings.Contains(r.body, `type="password"`) || !strings.Contains(r.body, `name="token"`) {
		t.Fatalf("sign-in page: %d, want 200 with a password input:\n%s", r.code, r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP=%q, want default-src 'none' and no unsafe-inline", csp)
	}

	refused := []struct {
		name   string
		origin string
		token  string
		code   int
	}{
		{"wrong token", e.Origin, "not-the-token", http.StatusForbidden},
		{"empty token", e.Origin, "", http.StatusForbidden},
		{"foreign origin", "https://evil.example.net", token, http.StatusForbidden},
		{"missing origin", "", token, http.StatusForbidden},
		{"null origin", "null", token, http.StatusForbidden},
	}
	for _, tt := range refused {
		r := e.form(t, "/console/login", "", tt.origin, url.Values{"token": {tt.token}})
		if r.code != tt.code {
			t.Errorf("%s: status=%d, want %d", tt.name, r.code, tt.code)
		}
		if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s: set cookies %q, want none", tt.name, sc)
		}
	}

	// The right token: a session cookie with every attribute.
	r = e.form(t, "/console/login", "", e.Origin, url.Values{"token": {token}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		t.Fatalf("sign in: %d %q, want 303 to /console/", r.code, r.header.Get("Location"))
	}
	sc := r.header.Get("Set-Cookie")
	for _, attr := range []string{admin.SessionCookie + "=", "Path=/console/", "Max-Age=43200", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
	cookie := e.signIn(t)
	if r := e.send(t, http.MethodGet, "/console/", cookie, "", "", nil); r.code != http.StatusOK || !strings.Contains(r.body, "开始新盘点") {
		t.Fatalf("GET /console/ signed in: %d, want 200 with the stocktakes:\n%s", r.code, r.body)
	}
	if r := e.send(t, http.MethodGet, "/console/", "forged-session", "", "", nil); r.code != http.StatusSeeOther {
		t.Fatalf("GET /console/ with a made-up session: %d, want 303", r.code)
	}

	// The session lasts 12 hours.
	e.Clock.Set(e.Clock.Now().Add(admin.SessionTTL - time.Second))
	if got, want := e.send(t, http.MethodGet, "/console/", cookie, "", "", nil).code, http.StatusOK; got != want {
		t.Fatalf("just before 12 h: status=%d, want %d", got, want)
	}
	e.Clock.Set(e.Clock.Now().Add(time.Second))
	if got, want := e.send(t, http.MethodGet, "/console/", cookie, "", "", nil).code, http.StatusSeeOther; got != want {
		t.Fatalf("after 12 h: status=%d, want %d", got, want)
	}
}

func TestConsoleCookieNotSecureOverHTTP(t *testing.T) {
	e := mustConsole(t, token, "http://127.0.0.1:8080")
	r := e.form(t, "/console/login", "", e.Origin, url.Values{"token": {token}})
	sc := r.header.Get("Set-Cookie")
	if r.code != http.StatusSeeOther || strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("sign in over http: %d, Set-Cookie %q: want 303, HttpOnly, SameSite=Strict and no Secure", r.code, sc)
	}
	// The Origin of the host the browser talked to is the console's own too.
	host := strings.TrimPrefix(e.Base, "http://")
	r = e.form(t, "/console/login", "", "http://"+host, url.Values{"token": {token}})
	if got, want := r.code, http.StatusSeeOther; got != want {
		t.Fatalf("sign in with Origin %s: status=%d, want %d", "http://"+host, got, want)
	}
}

func TestConsoleSignInLimit(t *testing.T) {
	e := mustConsole(t, token, "")
	for i := range 10 {
		if got, want := e.form(t, "/console/login", "", e.Origin, url.Values{"token": {"guess"}}).code, http.StatusForbidden; got != want {
			t.Fatalf("guess %d: status=%d, want %d", i+1, got, want)
		}
	}
	r := e.form(t, "/console/login", "", e.Origin, url.Values{"token": {token}})
	if got, want := r.code, http.StatusTooManyRequests; got != want {
		t.Fatalf("after 10 wrong tokens, the right one: status=%d, want %d", got, want)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatal("a limited sign-in set a cookie")
	}
	e.Clock.Set(e.Clock.Now().Add(10 * time.Minute))
	e.signIn(t)
}

func TestConsoleSignOut(t *testing.T) {
	e := mustConsole(t, token, "")
	cookie := e.signIn(t)
	other := e.signIn(t)
	// Signing out is a change: a foreign Origin does not end the session.
	if got, want := e.form(t, "/console/logout", cookie, "https://evil.example.net", nil).code, http.StatusForbidden; got != want {
		t.Fatalf("logout with a foreign Origin: status=%d, want %d", got, want)
	}
	if got, want := e.send(t, http.MethodGet, "/console/", cookie, "", "", nil).code, http.StatusOK; got != want {
		t.Fatalf("after a refused logout: status=%d, want %d", got, want)
	}
	r := e.form(t, "/console/logout", cookie, e.Origin, nil)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/login") {
		t.Fatalf("logout: %d %q, want 303 to the sign-in page", r.code, r.header.Get("Location"))
	}
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, admin.SessionCookie+"=;") || !strings.Contains(sc, "Max-Age=0") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("logout Set-Cookie %q, want the cookie cleared", sc)
	}
	for _, p := range []string{"/console/", "/console/staff", "/console/bindings", "/console/ops"} {
		if r := e.send(t, http.MethodGet, p, cookie, "", "", nil); r.code != http.StatusSeeOther {
			t.Errorf("GET %s after logout: %d, want 303", p, r.code)
		}
	}
	if got, want := e.send(t, http.MethodGet, "/console/backup", cookie, "", "", nil).code, http.StatusForbidden; got != want {
		t.Errorf("backup after logout: status=%d, want %d", got, want)
	}
	if got, want := e.form(t, "/console/stocktakes", cookie, e.Origin, url.Values{"name": {"x"}}).code, http.StatusForbidden; got != want {
		t.Errorf("open after logout: status=%d, want %d", got, want)
	}
	// Another browser's session is its own.
	if got, want := e.send(t, http.MethodGet, "/console/", other, "", "", nil).code, http.StatusOK; got != want {
		t.Fatalf("the other session after logout: status=%d, want %d", got, want)
	}
}

// TestConsoleChangesRefused sends every change without a session, with a
// foreign Origin and with none: each is 403 and nothing changes.
func TestConsoleChangesRefused(t *testing.T) {
	e := mustConsole(t, token, "")
	e.MustImport(t, store.Staff{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true})
	if _, err := e.DB.Bind("oAlice", "E001", "", e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := e.DB.OpenStocktake("已开", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.MustDeadLetter(t, "ev-dead-1", "permanent: test", 1, e.Clock.Now())
	cookie := e.signIn(t)
	before := snapshot(t, e)

	staffCSV := "employee_no,name,bind_code,can_scan\nE009,王五,999999,true\n"
	changes := []struct {
		path        string
		contentType string
		body        func() (string, io.Reader)
	}{
		{"/console/logout", "", nil},
		{"/console/stocktakes", "", func() (string, io.Reader) {
			return multipartBody(t, map[string]string{"name": "新盘点"}, "", "", "")
		}},
		{"/console/stocktakes/" + st.ID + "/close", "", nil},
		{"/console/staff/import", "", func() (string, io.Reader) {
			return multipartBody(t, nil, "file", "staff.csv", staffCSV)
		}},
		{"/console/items/import", "", func() (string, io.Reader) {
			return multipartBody(t, nil, "file", "items.csv", "code,sku,name\n690,S1,水\n")
		}},
		{"/console/staff/E001/unlock", "", nil},
		{"/console/openids/oAlice/unlock", "", nil},
		{"/console/bindings/oAlice/remove", "", nil},
		{"/console/menu", "", nil},
		{"/console/dlq/1/replay", "", nil},
		{"/console/dlq/replay", "", nil},
	}
	for _, ch := range changes {
		for _, tt := range []struct {
			name, cookie, origin string
		}{
			{"no session", "", e.Origin},
			{"expired session", "0123456789abcdef", e.Origin},
			{"foreign origin", cookie, "https://evil.example.net"},
			{"foreign scheme", cookie, strings.Replace(e.Origin, "https:", "http:", 1)},
			{"no origin", cookie, ""},
		} {
			ct, body := "application/x-www-form-urlencoded", io.Reader(strings.NewReader(""))
			if ch.body != nil {
				ct, body = ch.body()
			}
			r := e.send(t, http.MethodPost, ch.path, tt.cookie, tt.origin, ct, body)
			if got, want := r.code, http.StatusForbidden; got != want {
				t.Errorf("POST %s, %s: status=%d, want %d", ch.path, tt.name, got, want)
			}
		}
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("refused changes changed something:\nbefore %s\nafter  %s", before, after)
	}
	if got, want := e.Fake.Calls("/cgi-bin/menu/create"), 0; got != want {
		t.Fatalf("menus pushed=%d, want %d", got, want)
	}
	// The session still works.
	if got, want := e.send(t, http.MethodGet, "/console/", cookie, "", "", nil).code, http.StatusOK; got != want {
		t.Fatalf("the session after refused changes: status=%d, want %d", got, want)
	}
}

// snapshot is what the console's changes can change, as text.
func snapshot(tb testing.TB, e *consoleEnv) string {
	tb.Helper()
	var b strings.Builder
	sts, err := e.DB.Stocktakes()
	if err != nil {
		tb.Fatal(err)
	}
	for _, st := range sts {
		b.WriteString(st.ID + " " + st.Name + " open=" + boolStr(st.Open()) + "; ")
	}
	staff, err := e.DB.StaffList()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range staff {
		b.WriteString(s.EmployeeNo + "; ")
	}
	bs, err := e.DB.Bindings()
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range bs {
		b.WriteString(x.OpenID + "=" + x.EmployeeNo + "; ")
	}
	b.WriteString("dlq=" + itoa(streamMsgs(tb, e.Env, "WECHAT_DLQ")) + " stream=" + itoa(streamMsgs(tb, e.Env, "WECHAT")))
	return b.String()
}

func boolStr(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// TestConsoleLive reads live pages' event streams: an update at once, one
// after recorded scans are notified, the end of a stream when its session
// is signed out, and the end of every stream at Close.
func TestConsoleLive(t *testing.T) {
	e := mustConsole(t, token, "")
	st, err := e.DB.OpenStocktake("实时", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	first, second := e.signIn(t), e.signIn(t)
	a, b := e.stream(t, st.ID, first), e.stream(t, st.ID, second)
	for _, s := range []*eventStream{a, b} {
		s.until(t, "first update", `id="n-scans">0<`)
	}
	e.MustScan(t, st.ID, "oAlice", "E001", "EAN_13", "6901234567892", "A-01", "ev-1")
	e.MustScan(t, st.ID, "oAlice", "E001", "EAN_13", "<img src=x onerror=alert(1)>", "A-01", "ev-2")
	e.Console.Notify(st.ID)
	e.Console.Notify() // any stocktake
	for _, s := range []*eventStream{a, b} {
		ev := s.until(t, "update after scans", `id="n-scans">2<`)
		if !strings.Contains(ev, "A-01") || !strings.Contains(ev, "6901234567892") {
			t.Fatalf("update after scans: %s", ev)
		}
		if strings.Contains(ev, "<img") || !strings.Contains(ev, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("a scanned code is markup in the update, want text: %s", ev)
		}
	}
	// Signed out: that stream ends at its next update; the other goes on.
	if r := e.form(t, "/console/logout", first, e.Origin, nil); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	e.MustScan(t, st.ID, "oAlice", "E001", "EAN_13", "6920000000018", "A-01", "ev-3")
	e.Console.Notify(st.ID)
	a.ended(t, "after sign-out", `id="n-scans">3<`)
	b.until(t, "the other session's update", `id="n-scans">3<`)
	if got, want := e.send(t, http.MethodGet, "/console/stocktakes/"+st.ID+"/events", first, "", "", nil).code, http.StatusForbidden; got != want {
		t.Fatalf("events after sign-out: status=%d, want %d", got, want)
	}
	e.Console.Close()
	b.ended(t, "after Close", "")
}

// eventStream is a live page's event stream as a browser reads it.
type eventStream struct {
	events chan string // each event's data
}

func (e *consoleEnv) stream(t testing.TB, id, cookie string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Base+"/console/stocktakes/"+id+"/events", nil)
	req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream; charset=utf-8"; resp.StatusCode != 200 || got != want {
		t.Fatalf("events: %d %q, want 200 %q", resp.StatusCode, got, want)
	}
	s := &eventStream{events: make(chan string, 10)}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if line == "" && ev.Len() > 0 {
				s.events <- ev.String()
				ev.Reset()
				continue
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				ev.WriteString(data + "\n")
			}
		}
	}()
	return s
}

// until reads the stream until an event contains want, which must come
// within 2 s (updates are coalesced: one event may stand for several
// changes, and an earlier one may still be on its way).
func (s *eventStream) until(t testing.TB, what, want string) string {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			if strings.Contains(ev, want) {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s: no event with %s within 2 s", what, want)
		}
	}
}

// ended checks the stream ends within 2 s, with no update showing
// notWant before.
func (s *eventStream) ended(t testing.TB, what, notWant string) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if notWant != "" && strings.Contains(ev, notWant) {
				t.Fatalf("%s: an update with %s, want the stream's end", what, notWant)
			}
		case <-deadline:
			t.Fatalf("%s: the stream did not end within 2 s", what)
		}
	}
}

// TestConsoleChanges runs each change as a signed-in operator would.
func TestConsoleChanges(t *testing.T) {
	e := mustConsole(t, token, "")
	cookie := e.signIn(t)
	post := func(path string, ct string, body io.Reader) consoleResp {
		t.Helper()
		if ct == "" {
			ct, body = "application/x-www-form-urlencoded", strings.NewReader("")
		}
		return e.send(t, http.MethodPost, path, cookie, e.Origin, ct, body)
	}
	page := func(path string) string {
		t.Helper()
		r := e.send(t, http.MethodGet, path, cookie, "", "", nil)
		if r.code != http.StatusOK {
			t.Fatalf("GET %s: status=%d, want 200:\n%s", path, r.code, r.body)
		}
		return r.body
	}
	seeOther := func(r consoleResp, to string) {
		t.Helper()
		if r.code != http.StatusSeeOther || r.header.Get("Location") != to {
			t.Fatalf("status=%d Location=%q, want 303 to %s:\n%s", r.code, r.header.Get("Location"), to, r.body)
		}
	}

	// Staff: a bad row names its line and imports nothing.
	ct, body := multipartBody(t, nil, "file", "staff.csv", "employee_no,name,bind_code,can_scan\nE001,张三,111111,true\nE002,李四,,true\n")
	r := post("/console/staff/import", ct, body)
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "第 3 行") {
		t.Fatalf("bad staff file: %d, want 400 naming 第 3 行:\n%s", r.code, r.body)
	}
	if list, _ := e.DB.StaffList(); len(list) != 0 {
		t.Fatalf("a refused file imported %d people", len(list))
	}
	ct, body = multipartBody(t, nil, "file", "staff.csv", "employee_no,name,bind_code,can_scan\nE001,张三,111111,true\nE002,李四,222222,否\n")
	seeOther(post("/console/staff/import", ct, body), "/console/staff")
	if p := page("/console/staff"); !strings.Contains(p, "新增 2") || !strings.Contains(p, "李四") || strings.Contains(p, "222222") ||
		!strings.Contains(p, "未绑定") || strings.Contains(p, "unbound") {
		t.Fatalf("staff page after import: want the flash and the names, never a bind code:\n%s", p)
	}
	if p := page("/console/staff"); strings.Contains(p, "新增 2") {
		t.Fatal("the flash showed twice")
	}

	// A bind lockout, lifted.
	err := e.DB.Update(func(tx *store.Tx) error {
		for range 5 {
			if _, err := tx.CountEmployeeBindFailure("E002", e.Clock.Now()); err != nil {
				return err
			}
			if _, err := tx.CountOpenIDBindFailure("oGuesser", e.Clock.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := page("/console/staff"); !strings.Contains(p, "锁定至") || !strings.Contains(p, `data-unlock="E002"`) || !strings.Contains(p, "oGuesser") {
		t.Fatalf("staff page: want E002 locked and oGuesser's failures:\n%s", p)
	}
	seeOther(post("/console/staff/E002/unlock", "", nil), "/console/staff")
	if locks, err := e.DB.BindLockouts(e.Clock.Now()); err != nil || len(locks) != 1 || locks[0].OpenID != "oGuesser" {
		t.Fatalf("lockouts after unlocking E002: %+v, %v; want only oGuesser's", locks, err)
	}
	seeOther(post("/console/openids/oGuesser/unlock", "", nil), "/console/staff")
	if p := page("/console/staff"); strings.Contains(p, "锁定至") || strings.Contains(p, `id="openid-locks"`) {
		t.Fatalf("staff page after unlocks still shows a lockout:\n%s", p)
	}
	if r := post("/console/staff/E404/unlock", "", nil); r.code != http.StatusNotFound {
		t.Fatalf("unlock an unknown employee: %d, want 404", r.code)
	}

	// Items: a bad row names its line; a good file imports.
	ct, body = multipartBody(t, nil, "file", "items.csv", "code,sku,name\n6901,S1,水\n6902,,可乐\n")
	if r := post("/console/items/import", ct, body); r.code != http.StatusBadRequest || !strings.Contains(r.body, "第 3 行：sku is empty") {
		t.Fatalf("bad items file: %d, want 400 naming 第 3 行:\n%s", r.code, r.body)
	}
	ct, body = multipartBody(t, nil, "file", "items.csv", "code,sku,name\n6901234567892,S1,矿泉水\n")
	seeOther(post("/console/items/import", ct, body), "/console/staff")
	if n, _ := e.DB.ItemCount(); n != 1 {
		t.Fatalf("items=%d, want 1", n)
	}

	// A book stock with a bad row: its line, the form kept, nothing opened.
	ct, body = multipartBody(t, map[string]string{"name": "A 区", "locations": "A-"}, "expected", "book.csv", "location,sku,qty\nA-01,S1,2\nA-02,S2,-1\n")
	if r := post("/console/stocktakes", ct, body); r.code != http.StatusBadRequest || !strings.Contains(r.body, "第 3 行：qty") ||
		!strings.Contains(r.body, `value="A 区"`) || !strings.Contains(r.body, `value="A-"`) {
		t.Fatalf("bad book stock: %d, want 400 naming 第 3 行 with the form kept:\n%s", r.code, r.body)
	}
	if list, _ := e.DB.Stocktakes(); len(list) != 0 {
		t.Fatalf("a refused open opened %d stocktakes", len(list))
	}

	// Stocktakes: open, scan, close.
	ct, body = multipartBody(t, map[string]string{"name": "三月全盘"}, "", "", "")
	seeOther(post("/console/stocktakes", ct, body), "/console/stocktakes/ST0001")
	ct, body = multipartBody(t, map[string]string{"name": "又一个"}, "", "", "")
	if r := post("/console/stocktakes", ct, body); r.code != http.StatusConflict || !strings.Contains(r.body, "ST0001") {
		t.Fatalf("a second open: %d, want 409 naming ST0001:\n%s", r.code, r.body)
	}
	e.MustScan(t, "ST0001", "oAlice", "E001", "EAN_13", "6901234567892", "A-01", "ev-1")
	e.MustScan(t, "ST0001", "oBob", "E002", "EAN_13", "=cmd|' /C calc'!A0", "B-02", "ev-2")
	p := page("/console/stocktakes/ST0001")
	for _, want := range []string{"三月全盘", "进行中", `id="n-scans">2<`, `id="n-people">2<`, "张三", "A-01", "B-02",
		`data-stream="/console/stocktakes/ST0001/events"`, "/console/static/live.js",
		"/console/stocktakes/ST0001/export?kind=variance&amp;format=xlsx"} {
		if !strings.Contains(p, want) {
			t.Errorf("live page lacks %q", want)
		}
	}
	if p := page("/console/"); !strings.Contains(p, "ST0001") || !strings.Contains(p, "进行中") {
		t.Fatalf("stocktake list:\n%s", p)
	}
	// The export is the admin API's.
	_, apiCSV := do(t, e.Env, http.MethodGet, "/admin/stocktakes/ST0001/scans?format=csv", "", "")
	r = e.send(t, http.MethodGet, "/console/stocktakes/ST0001/export?kind=scans&format=csv", cookie, "", "", nil)
	if r.code != http.StatusOK || r.body != apiCSV || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("console export: %d %q\n%s\nwant the API's:\n%s", r.code, r.header.Get("Content-Type"), r.body, apiCSV)
	}
	if got, want := e.send(t, http.MethodGet, "/console/stocktakes/ST0001/export?kind=scans&format=pdf", cookie, "", "", nil).code, http.StatusBadRequest; got != want {
		t.Fatalf("export as pdf: status=%d, want %d", got, want)
	}
	if got, want := e.send(t, http.MethodGet, "/console/stocktakes/ST0404", cookie, "", "", nil).code, http.StatusNotFound; got != want {
		t.Fatalf("unknown stocktake: status=%d, want %d", got, want)
	}
	v := page("/console/stocktakes/ST0001/variance?diff=1")
	if !strings.Contains(v, "S1") || !strings.Contains(v, "矿泉水") || !strings.Contains(v, "&#43;1 盘盈") {
		t.Fatalf("variance page:\n%s", v)
	}
	seeOther(post("/console/stocktakes/ST0001/close", "", nil), "/console/stocktakes/ST0001")
	if st, _ := e.DB.Stocktake("ST0001"); st.Open() {
		t.Fatal("close did not close")
	}
	if p := page("/console/stocktakes/ST0001"); !strings.Contains(p, "已结束") || strings.Contains(p, "data-stream") || strings.Contains(p, "live.js") {
		t.Fatalf("closed stocktake page: want 已结束 and no live stream:\n%s", p)
	}
	if r := post("/console/stocktakes/ST0001/close", "", nil); r.code != http.StatusConflict {
		t.Fatalf("closing again: %d, want 409", r.code)
	}

	// Bindings: remove one.
	if _, err := e.DB.Bind("oAlice", "E001", "", e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if p := page("/console/bindings"); !strings.Contains(p, "oAlice") || !strings.Contains(p, "已绑定") {
		t.Fatalf("bindings page:\n%s", p)
	}
	seeOther(post("/console/bindings/oAlice/remove", "", nil), "/console/bindings")
	if _, err := e.DB.BindingByOpenID("oAlice"); err == nil {
		t.Fatal("remove did not remove the binding")
	}
	if p := page("/console/bindings"); !strings.Contains(p, "已解除工号 E001（张三）的绑定") {
		t.Fatalf("bindings page after remove:\n%s", p)
	}
	if r := post("/console/bindings/oAlice/remove", "", nil); r.code != http.StatusNotFound {
		t.Fatalf("removing again: %d, want 404", r.code)
	}

	// The backup: a bbolt file.
	r = e.send(t, http.MethodGet, "/console/backup", cookie, "", "", nil)
	if r.code != http.StatusOK || len(r.body) < 4096 || !strings.Contains(r.header.Get("Content-Disposition"), ".db") {
		t.Fatalf("backup: %d, %d bytes, %q", r.code, len(r.body), r.header.Get("Content-Disposition"))
	}

	// Operations: the menu, a dead letter replayed.
	seeOther(post("/console/menu", "", nil), "/console/ops")
	if got, want := e.Fake.Calls("/cgi-bin/menu/create"), 1; got != want {
		t.Fatalf("menus pushed=%d, want %d", got, want)
	}
	e.MustDeadLetter(t, "ev-dead-1", "permanent: test", 3, e.Clock.Now())
	if p := page("/console/ops"); !strings.Contains(p, "菜单已发布") || !strings.Contains(p, "permanent: test") {
		t.Fatalf("ops page:\n%s", p)
	}
	stream := streamMsgs(t, e.Env, "WECHAT")
	seeOther(post("/console/dlq/1/replay", "", nil), "/console/ops")
	if got, want := streamMsgs(t, e.Env, "WECHAT"), stream+1; got != want {
		t.Fatalf("WECHAT msgs after replay=%d, want %d", got, want)
	}
	if p := page("/console/ops"); !strings.Contains(p, "死信 1 已重放") || !strings.Contains(p, "没有死信") {
		t.Fatalf("ops page after replay:\n%s", p)
	}
	if r := post("/console/dlq/1/replay", "", nil); r.code != http.StatusNotFound {
		t.Fatalf("replaying again: %d, want 404", r.code)
	}
}

// TestConsoleErrorPageBack: the error page's way back is a console page of
// this host, never another site's address from the Referer.
func TestConsoleErrorPageBack(t *testing.T) {
	e := mustConsole(t, token, "")
	cookie := e.signIn(t)
	host := strings.TrimPrefix(e.Base, "http://")
	for _, tt := range []struct{ referer, want, notWant string }{
		{"https://evil.example.net/console/x", `href="/console/"`, "evil"},
		{"http://" + host + "/console/stocktakes/ST0001?x=1", `href="/console/stocktakes/ST0001?x=1"`, ""},
		{"http://" + host + "/elsewhere", `href="/console/"`, "elsewhere"},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.Base+"/console/stocktakes/ST0404", nil)
		req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
		req.Header.Set("Referer", tt.referer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "没有这个盘点：ST0404") || !strings.Contains(body, tt.want) ||
			(tt.notWant != "" && strings.Contains(body, tt.notWant)) {
			t.Errorf("Referer %s: %d, want 404 with %s and without %q:\n%s", tt.referer, resp.StatusCode, tt.want, tt.notWant, body)
		}
	}
}
