package callback_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

const (
	pagesPublicURL = "https://wx.example.com"
	pagesAuthorize = "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxtest0000000001&redirect_uri=https%3A%2F%2Fwx.example.com%2Foauth%2Fcallback&response_type=code&scope=snsapi_base&state=st-1#wechat_redirect"
)

// pagesEnv is the staff pages on a real embedded NATS bus, with the test's
// own responders standing in for the workers.
type pagesEnv struct {
	Bus    *events.Bus
	Server *httptest.Server
	Client *http.Client // keeps cookies, never follows redirects
	Logs   *pagesLogs
}

// MustPages serves the pages on a fresh bus answered by handlers (none:
// no workers at all).
func MustPages(tb testing.TB, handlers map[string]events.RPCHandler) *pagesEnv {
	tb.Helper()
	bus := eventstest.MustBus(tb, nil)
	for op, h := range handlers {
		sub, err := bus.Serve(op, h)
		if err != nil {
			tb.Fatalf("serve %s: %v", op, err)
		}
		tb.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	logs := &pagesLogs{}
	h, err := callback.NewPages(callback.PagesConfig{
		PublicURL: pagesPublicURL,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, bus)
	if err != nil {
		tb.Fatalf("NewPages: %v", err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	client := &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &pagesEnv{Bus: bus, Server: srv, Client: client, Logs: logs}
}

// Do sends a request to the pages and returns the answer with its body.
func (e *pagesEnv) Do(tb testing.TB, method, path, contentType string, body io.Reader) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, e.Server.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func (e *pagesEnv) Get(tb testing.TB, path string) (*http.Response, string) {
	tb.Helper()
	return e.Do(tb, http.MethodGet, path, "", nil)
}

// Submit posts form as a browser would, with fields overriding its values.
func (e *pagesEnv) Submit(tb testing.TB, form pagesForm, fields map[string]string) (*http.Response, string) {
	tb.Helper()
	v := url.Values{}
	for _, in := range form.Inputs {
		v.Set(in.Name, in.Value)
	}
	for k, x := range fields {
		v.Set(k, x)
	}
	if got, want := strings.ToLower(form.Method), "post"; got != want {
		tb.Fatalf("form method=%q, want %q", got, want)
	}
	return e.Do(tb, http.MethodPost, form.Action, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

func (e *pagesEnv) PostScan(tb testing.TB, body string) (*http.Response, string) {
	tb.Helper()
	return e.Do(tb, http.MethodPost, "/api/scans", "application/json", strings.NewReader(body))
}

// pagesLogs collects log output across goroutines.
type pagesLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *pagesLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *pagesLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pagesForm is the one <form> of a page, as a browser would read it.
type pagesForm struct {
	Method, Action string
	Inputs         []pagesInput
}

type pagesInput struct{ Name, Type, Value string }

func (f pagesForm) Input(name string) (pagesInput, bool) {
	for _, in := range f.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return pagesInput{}, false
}

var (
	pagesFormRE  = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	pagesInputRE = regexp.MustCompile(`<input\b([^>]*)>`)
	pagesAttrRE  = regexp.MustCompile(`([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:="([^"]*)")?`)
)

func pagesAttrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range pagesAttrRE.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// ParsePagesForm returns the first form of page whose action is action.
func ParsePagesForm(tb testing.TB, page, action string) pagesForm {
	tb.Helper()
	for _, m := range pagesFormRE.FindAllStringSubmatch(page, -1) {
		fa := pagesAttrs(m[1])
		if fa["action"] != action {
			continue
		}
		f := pagesForm{Method: fa["method"], Action: fa["action"]}
		for _, in := range pagesInputRE.FindAllStringSubmatch(m[2], -1) {
			a := pagesAttrs(in[1])
			typ := a["type"]
			if typ == "" {
				typ = "text"
			}
			f.Inputs = append(f.Inputs, pagesInput{Name: a["name"], Type: typ, Value: a["value"]})
		}
		return f
	}
	tb.Fatalf("no form with action %q in page:\n%s", action, page)
	return pagesForm{}
}

// CheckPagesHTML checks what every HTML page must be: its headers, no
// reference to another origin, and inline blocks the CSP allows.
func CheckPagesHTML(tb testing.TB, resp *http.Response, page string) {
	tb.Helper()
	for _, h := range []struct{ name, want string }{
		{"Content-Type", "text/html; charset=utf-8"},
		{"Cache-Control", "no-store"},
		{"X-Frame-Options", "DENY"},
		{"Referrer-Policy", "no-referrer"},
	} {
		if got := resp.Header.Get(h.name); got != h.want {
			tb.Errorf("%s=%q, want %q", h.name, got, h.want)
		}
	}
	if !strings.Contains(page, `name="viewport"`) {
		tb.Errorf("page has no viewport meta")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "connect-src 'self'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			tb.Errorf("Content-Security-Policy=%q, want it to contain %q", csp, want)
		}
	}
	if strings.Contains(csp, "http") || strings.Contains(csp, "*") || strings.Contains(csp, "unsafe") {
		tb.Errorf("Content-Security-Policy=%q allows other origins", csp)
	}
	for _, bad := range []string{`src="http`, `href="http`, `src="//`, `href="//`, `url(`, `@import`, "res.wx.qq.com"} {
		if strings.Contains(page, bad) {
			tb.Errorf("page contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`\b(src|href|action)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if v := m[2]; !(strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//")) && !strings.HasPrefix(v, "data:") {
			tb.Errorf("%s=%q is not a path on this origin", m[1], v)
		}
	}
	for _, m := range regexp.MustCompile(`(?s)<(script|style)\b([^>]*)>(.*?)</(?:script|style)>`).FindAllStringSubmatch(page, -1) {
		if m[1] == "script" && m[2] == ` src="`+callback.JSSDKPath+`"` && m[3] == "" {
			continue // this origin's JS-SDK, allowed by 'self'
		}
		if strings.TrimSpace(m[2]) != "" {
			tb.Errorf("<%s%s> has attributes", m[1], m[2])
		}
		sum := sha256.Sum256([]byte(m[3]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !slices.Contains(pagesCSPDirective(csp, m[1]+"-src"), h) {
			tb.Errorf("inline <%s> (hash %s) is not allowed by Content-Security-Policy %q", m[1], h, csp)
		}
	}
}

// pagesCSPDirective is the sources of directive name in csp.
func pagesCSPDirective(csp, name string) []string {
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == name {
			return f[1:]
		}
	}
	return nil
}

// pagesDecode decodes a responder's request.
func pagesDecode[T any](raw json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// pagesCalls records what the responders were asked.
type pagesCalls struct {
	mu   sync.Mutex
	reqs map[string][]json.RawMessage
}

func (c *pagesCalls) Record(op string, raw json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reqs == nil {
		c.reqs = map[string][]json.RawMessage{}
	}
	c.reqs[op] = append(c.reqs[op], append(json.RawMessage(nil), raw...))
}

func (c *pagesCalls) Of(op string) []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]json.RawMessage(nil), c.reqs[op]...)
}

// pagesWorkers stands in for the workers, recording every request.
func pagesWorkers(calls *pagesCalls) map[string]events.RPCHandler {
	return map[string]events.RPCHandler{
		events.OpBindStart: func(ctx context.Context, raw json.RawMessage) (any, error) {
			calls.Record(events.OpBindStart, raw)
			return events.BindStartResponse{AuthorizeURL: pagesAuthorize}, nil
		},
		events.OpOAuthCallback: func(ctx context.Context, raw json.RawMessage) (any, error) {
			calls.Record(events.OpOAuthCallback, raw)
			req, err := pagesDecode[events.OAuthCallbackRequest](raw)
			if err != nil {
				return nil, err
			}
			if req.State != "st-1" {
				return nil, &events.RPCError{Status: 410, Code: "state_expired", Message: "链接已过期，请重新打开绑定页。"}
			}
			return events.SessionResponse{Session: "sess/1+é", Next: "bind"}, nil
		},
		events.OpBindSubmit: func(ctx context.Context, raw json.RawMessage) (any, error) {
			calls.Record(events.OpBindSubmit, raw)
			req, err := pagesDecode[events.BindSubmitRequest](raw)
			if err != nil {
				return nil, err
			}
			if req.EmployeeNo != "E1001" || req.BindCode != "654321" {
				return nil, &events.RPCError{Status: 400, Code: "wrong_code", Message: "工号或绑定码不对。"}
			}
			return events.BindSubmitResponse{EmployeeNo: "E1001", Name: "张三"}, nil
		},
	}
}

func TestPagesBindStart(t *testing.T) {
	calls := &pagesCalls{}
	env := MustPages(t, pagesWorkers(calls))

	resp, body := env.Get(t, "/bind")
	if got, want := resp.StatusCode, http.StatusFound; got != want {
		t.Fatalf("status=%d, want %d; body %q", got, want, body)
	}
	if got, want := resp.Header.Get("Location"), pagesAuthorize; got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}
	if got := resp.Header.Get("Set-Cookie"); got != "" {
		t.Fatalf("Set-Cookie=%q, want none", got)
	}
	reqs := calls.Of(events.OpBindStart)
	if got, want := len(reqs), 1; got != want {
		t.Fatalf("bind.start calls=%d, want %d", got, want)
	}
	if req, _ := pagesDecode[events.BindStartRequest](reqs[0]); req.Next != "bind" {
		t.Fatalf("next=%q, want bind", req.Next)
	}
}

func TestPagesBindFlow(t *testing.T) {
	calls := &pagesCalls{}
	env := MustPages(t, pagesWorkers(calls))

	resp, body := env.Get(t, "/oauth/callback?code=CODE-1&state=st-1")
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d; body %s", got, want, body)
	}
	CheckPagesHTML(t, resp, body)
	if req, _ := pagesDecode[events.OAuthCallbackRequest](calls.Of(events.OpOAuthCallback)[0]); req.Code != "CODE-1" || req.State != "st-1" {
		t.Fatalf("oauth.callback got %+v", req)
	}
	form := ParsePagesForm(t, body, "/bind")
	for _, f := range []struct{ name, typ string }{
		{"employee_no", "text"}, {"bind_code", "text"}, {"session", "hidden"},
	} {
		in, ok := form.Input(f.name)
		if !ok {
			t.Fatalf("form has no input %q: %+v", f.name, form)
		}
		if in.Type != f.typ {
			t.Fatalf("input %s type=%q, want %q", f.name, in.Type, f.typ)
		}
	}
	if in, _ := form.Input("session"); in.Value != "sess/1+é" {
		t.Fatalf("session=%q, want %q", in.Value, "sess/1+é")
	}

	resp, body = env.Submit(t, form, map[string]string{"employee_no": "E1001", "bind_code": "654321"})
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("submit status=%d, want %d; body %s", got, want, body)
	}
	CheckPagesHTML(t, resp, body)
	for _, want := range []string{"绑定成功", "张三", "E1001", "扫码盘点"} {
		if !strings.Contains(body, want) {
			t.Fatalf("success page has no %q:\n%s", want, body)
		}
	}
	req, _ := pagesDecode[events.BindSubmitRequest](calls.Of(events.OpBindSubmit)[0])
	if got, want := req, (events.BindSubmitRequest{Session: "sess/1+é", EmployeeNo: "E1001", BindCode: "654321"}); got != want {
		t.Fatalf("bind.submit got %+v, want %+v", got, want)
	}
}

func TestPagesOAuthCallback(t *testing.T) {
	for _, tt := range []struct {
		name     string
		query    string
		answer   any // SessionResponse or error
		status   int
		contains []string
		location string
	}{
		{name: "Bound", query: "code=c&state=s",
			answer: events.SessionResponse{Session: "s1", Next: "bind", Bound: true, EmployeeNo: "E7", Name: "李四"},
			status: 200, contains: []string{"你已绑定：工号 E7 姓名 李四", `name="employee_no"`, `name="bind_code"`}},
		{name: "Scan", query: "code=c&state=s",
			answer: events.SessionResponse{Session: "a b/c", Next: "scan"}, status: 302, location: "/scan?s=a+b%2Fc"},
		{name: "MissingCode", query: "state=s", status: 400, contains: []string{"授权"}},
		{name: "EmptyCode", query: "code=&state=s", status: 400, contains: []string{"授权"}},
		{name: "MissingState", query: "code=c", status: 400, contains: []string{"重新打开"}},
		{name: "InvalidCode", query: "code=c&state=s",
			answer: &events.RPCError{Status: 400, Code: "40029", Message: "授权码无效，请重新打开。"}, status: 400, contains: []string{"授权码无效，请重新打开。"}},
		{name: "UsedCode", query: "code=c&state=s",
			answer: &events.RPCError{Status: 409, Code: "40163", Message: "授权码已用过，请重新打开。"}, status: 409, contains: []string{"授权码已用过，请重新打开。"}},
		{name: "Snapshot", query: "code=c&state=s",
			answer: &events.RPCError{Status: 403, Code: "snapshot_user", Message: "请点“使用完整服务”后再试。"}, status: 403, contains: []string{"请点“使用完整服务”后再试。"}},
		{name: "StateExpired", query: "code=c&state=s",
			answer: &events.RPCError{Status: 410, Code: "state_expired", Message: "链接已过期，请重新打开。"}, status: 410, contains: []string{"链接已过期，请重新打开。"}},
		{name: "WorkerBug", query: "code=c&state=s",
			answer: errors.New("secret detail"), status: 500, contains: []string{"系统出了点问题"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := MustPages(t, map[string]events.RPCHandler{
				events.OpOAuthCallback: func(ctx context.Context, raw json.RawMessage) (any, error) {
					if err, ok := tt.answer.(error); ok {
						return nil, err
					}
					return tt.answer, nil
				},
			})
			resp, body := env.Get(t, "/oauth/callback?"+tt.query)
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			if tt.location != "" {
				if got, want := resp.Header.Get("Location"), tt.location; got != want {
					t.Fatalf("Location=%q, want %q", got, want)
				}
				return
			}
			CheckPagesHTML(t, resp, body)
			for _, want := range tt.contains {
				if !strings.Contains(body, want) && !strings.Contains(body, html.EscapeString(want)) {
					t.Fatalf("page has no %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "secret detail") {
				t.Fatalf("page shows the worker's internal error")
			}
		})
	}
}

func TestPagesBindSubmitRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		fields url.Values
		answer error
		status int
		want   string
		calls  int
	}{
		{name: "WrongCode", fields: url.Values{"session": {"s1"}, "employee_no": {"E1"}, "bind_code": {"x"}},
			answer: &events.RPCError{Status: 400, Code: "wrong_code", Message: "绑定码不对，还可以试 4 次。"}, status: 400, want: "绑定码不对，还可以试 4 次。", calls: 1},
		{name: "Locked", fields: url.Values{"session": {"s1"}, "employee_no": {"E1"}, "bind_code": {"x"}},
			answer: &events.RPCError{Status: 429, Code: "locked", Message: "错误次数太多，请 15 分钟后再试。"}, status: 429, want: "错误次数太多，请 15 分钟后再试。", calls: 1},
		{name: "SessionExpired", fields: url.Values{"session": {"s1"}, "employee_no": {"E1"}, "bind_code": {"x"}},
			answer: &events.RPCError{Status: 410, Code: "session_expired", Message: "页面已过期，请重新打开绑定页。"}, status: 410, want: "页面已过期，请重新打开绑定页。", calls: 1},
		{name: "Snapshot", fields: url.Values{"session": {"s1"}, "employee_no": {"E1"}, "bind_code": {"x"}},
			answer: &events.RPCError{Status: 403, Code: "snapshot_user", Message: "请使用完整服务后再绑定。"}, status: 403, want: "请使用完整服务后再绑定。", calls: 1},
		{name: "EmptyCode", fields: url.Values{"session": {"s1"}, "employee_no": {"E1"}, "bind_code": {"  "}},
			status: 400, want: "请填写工号和绑定码", calls: 0},
		{name: "EmptyEmployee", fields: url.Values{"session": {"s1"}, "employee_no": {""}, "bind_code": {"1"}},
			status: 400, want: "请填写工号和绑定码", calls: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			env := MustPages(t, map[string]events.RPCHandler{
				events.OpBindSubmit: func(ctx context.Context, raw json.RawMessage) (any, error) {
					mu.Lock()
					n++
					mu.Unlock()
					return nil, tt.answer
				},
			})
			resp, body := env.Do(t, http.MethodPost, "/bind", "application/x-www-form-urlencoded", strings.NewReader(tt.fields.Encode()))
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			CheckPagesHTML(t, resp, body)
			if !strings.Contains(body, tt.want) {
				t.Fatalf("page has no %q:\n%s", tt.want, body)
			}
			form := ParsePagesForm(t, body, "/bind")
			if in, _ := form.Input("employee_no"); in.Value != tt.fields.Get("employee_no") {
				t.Fatalf("employee_no=%q, want it kept as %q", in.Value, tt.fields.Get("employee_no"))
			}
			if in, _ := form.Input("session"); in.Value != "s1" {
				t.Fatalf("session=%q, want s1", in.Value)
			}
			if in, _ := form.Input("bind_code"); in.Value != "" {
				t.Fatalf("bind_code=%q, want it not echoed", in.Value)
			}
			mu.Lock()
			defer mu.Unlock()
			if got, want := n, tt.calls; got != want {
				t.Fatalf("bind.submit calls=%d, want %d", got, want)
			}
		})
	}
}

func TestPagesBindSubmitBadForm(t *testing.T) {
	env := MustPages(t, nil)
	for _, tt := range []struct {
		name   string
		body   string
		status int
	}{
		{name: "NoSession", body: "employee_no=E1&bind_code=1", status: 400},
		{name: "TooLarge", body: "session=s&employee_no=" + strings.Repeat("x", callback.MaxBindFormBytes), status: 413},
		{name: "BadEncoding", body: "session=%zz", status: 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := env.Do(t, http.MethodPost, "/bind", "application/x-www-form-urlencoded", strings.NewReader(tt.body))
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			CheckPagesHTML(t, resp, body)
		})
	}
}

func TestPagesNoWorkers(t *testing.T) {
	env := MustPages(t, nil)
	for _, tt := range []struct {
		name, method, path, ctype, body string
		json                            bool
	}{
		{name: "BindStart", method: "GET", path: "/bind"},
		{name: "OAuthCallback", method: "GET", path: "/oauth/callback?code=c&state=s"},
		{name: "BindSubmit", method: "POST", path: "/bind", ctype: "application/x-www-form-urlencoded", body: "session=s&employee_no=E1&bind_code=1"},
		{name: "ScanStart", method: "GET", path: "/scan"},
		{name: "ScanPage", method: "GET", path: "/scan?s=s1"},
		{name: "ScanSubmit", method: "POST", path: "/api/scans", ctype: "application/json", body: `{"session":"s1","result":"EAN_13,1","client_id":"c1"}`, json: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, body := env.Do(t, tt.method, tt.path, tt.ctype, strings.NewReader(tt.body))
			if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("answered after %s, want within 3s", d)
			}
			if !tt.json {
				CheckPagesHTML(t, resp, body)
				if !strings.Contains(body, "服务暂时不可用，请稍后再试") {
					t.Fatalf("page has no 服务暂时不可用:\n%s", body)
				}
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got, want := e.Error.Code, "unavailable"; got != want {
				t.Fatalf("code=%q, want %q", got, want)
			}
		})
	}
}

func TestPagesScanStart(t *testing.T) {
	calls := &pagesCalls{}
	env := MustPages(t, pagesWorkers(calls))
	resp, body := env.Get(t, "/scan")
	if got, want := resp.StatusCode, http.StatusFound; got != want {
		t.Fatalf("status=%d, want %d; body %s", got, want, body)
	}
	if got, want := resp.Header.Get("Location"), pagesAuthorize; got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}
	if req, _ := pagesDecode[events.BindStartRequest](calls.Of(events.OpBindStart)[0]); req.Next != "scan" {
		t.Fatalf("next=%q, want scan", req.Next)
	}
}

func TestPagesScanPage(t *testing.T) {
	cfg := events.ScanPageResponse{
		AppID:      "wxtest0000000001",
		Timestamp:  1700000000,
		NonceStr:   `n<o>n"c'e&`,
		Signature:  "0f9de62fce790f9a083d5c99e95740ceb90c27ed",
		EmployeeNo: "E<1001>",
		Name:       `王"五"`,
		Stocktake:  "2024 年末盘点",
		Location:   "A-01",

		StocktakeOpen: true, OpenStocktakes: 1,
	}
	var got events.ScanPageRequest
	var mu sync.Mutex
	env := MustPages(t, map[string]events.RPCHandler{
		events.OpScanPage: func(ctx context.Context, raw json.RawMessage) (any, error) {
			req, err := pagesDecode[events.ScanPageRequest](raw)
			mu.Lock()
			got = req
			mu.Unlock()
			if req.Session != "sess-1" {
				return nil, &events.RPCError{Status: 401, Code: "not_bound", Message: "你还没有绑定工号，请先绑定。"}
			}
			return cfg, err
		},
	})

	resp, body := env.Get(t, "/scan?s=sess-1")
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d; body %s", got, want, body)
	}
	CheckPagesHTML(t, resp, body)
	mu.Lock()
	if want := (events.ScanPageRequest{Session: "sess-1", URL: pagesPublicURL + "/scan?s=sess-1"}); got != want {
		t.Fatalf("scan.page got %+v, want %+v", got, want)
	}
	mu.Unlock()
	for _, want := range []string{
		`data-session="sess-1"`,
		`data-appid="wxtest0000000001"`,
		`data-timestamp="1700000000"`,
		`data-noncestr="` + html.EscapeString(cfg.NonceStr) + `"`,
		`data-signature="0f9de62fce790f9a083d5c99e95740ceb90c27ed"`,
		html.EscapeString(cfg.Name), html.EscapeString(cfg.EmployeeNo), cfg.Stocktake, cfg.Location,
		"扫一扫", `<script src="/static/jweixin-1.6.0.js"></script>`, "wx.config(", "wx.ready(", "wx.error(",
		"wx.scanQRCode(", "needResult: 1", "'/api/scans'", "'/api/scans/qty'", "'/api/scans/undo'",
		`id="code"`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("page has no %q:\n%s", want, body)
		}
	}
	for _, raw := range []string{cfg.NonceStr, cfg.Name, cfg.EmployeeNo} {
		if strings.Contains(body, raw) {
			t.Fatalf("page has %q unescaped", raw)
		}
	}

	t.Run("NotBound", func(t *testing.T) {
		resp, body := env.Get(t, "/scan?s=other")
		if got, want := resp.StatusCode, 401; got != want {
			t.Fatalf("status=%d, want %d; body %s", got, want, body)
		}
		CheckPagesHTML(t, resp, body)
		// The workers' words are for a refused scan; someone who only
		// opened the page is told what is true for them.
		if !strings.Contains(body, "你还没有绑定工号，绑定后就能在这里扫码盘点。") || !strings.Contains(body, `href="/bind"`) {
			t.Fatalf("page has no message or bind link:\n%s", body)
		}
		if strings.Contains(body, "请先绑定。") {
			t.Fatalf("page shows the workers' chat wording:\n%s", body)
		}
	})
}

func TestPagesScanSubmit(t *testing.T) {
	var mu sync.Mutex
	var got []events.ScanSubmitRequest
	env := MustPages(t, map[string]events.RPCHandler{
		events.OpScanSubmit: func(ctx context.Context, raw json.RawMessage) (any, error) {
			req, err := pagesDecode[events.ScanSubmitRequest](raw)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			got = append(got, req)
			mu.Unlock()
			switch req.Session {
			case "expired":
				return nil, &events.RPCError{Status: 410, Code: "session_expired", Message: "页面已过期，请重新打开。"}
			case "unbound":
				return nil, &events.RPCError{Status: 403, Code: "not_bound", Message: "你还没有绑定工号。"}
			}
			return events.ScanSubmitResponse{Message: "已记录 6901234567892，共 3 件", Code: "6901234567892", CodeType: "EAN_13", Location: "A-01", Count: 3}, nil
		},
	})
	for _, tt := range []struct {
		name   string
		body   string
		status int
		code   string // error code, for a refusal
		calls  int
	}{
		{name: "OK", body: `{"session":"s1","result":"EAN_13,6901234567892","client_id":"c-1"}`, status: 200, calls: 1},
		{name: "BadJSON", body: `{"session":`, status: 400, code: "bad_json"},
		{name: "NotJSON", body: `session=s1&result=1`, status: 400, code: "bad_json"},
		{name: "EmptyResult", body: `{"session":"s1","result":"  ","client_id":"c-1"}`, status: 400, code: "result_missing"},
		{name: "EmptySession", body: `{"result":"1","client_id":"c-1"}`, status: 400, code: "session_missing"},
		{name: "TooLarge", body: `{"session":"s1","result":"` + strings.Repeat("1", callback.MaxScanBodyBytes) + `"}`, status: 413, code: "too_large"},
		{name: "Expired", body: `{"session":"expired","result":"1","client_id":"c-2"}`, status: 410, code: "session_expired", calls: 1},
		{name: "NotBound", body: `{"session":"unbound","result":"1","client_id":"c-3"}`, status: 403, code: "not_bound", calls: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			resp, body := env.PostScan(t, tt.body)
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, body)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Fatalf("Content-Type=%q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
				t.Fatalf("Cache-Control=%q, want %q", got, want)
			}
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if got, want := n, tt.calls; got != want {
				t.Fatalf("scan.submit calls=%d, want %d", got, want)
			}
			if tt.status != 200 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if got, want := e.Error.Code, tt.code; got != want {
					t.Fatalf("error code=%q, want %q", got, want)
				}
				if e.Error.Message == "" {
					t.Fatalf("error has no message: %s", body)
				}
				return
			}
			var ok events.ScanSubmitResponse
			if err := json.Unmarshal([]byte(body), &ok); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if want := (events.ScanSubmitResponse{Message: "已记录 6901234567892，共 3 件", Code: "6901234567892", CodeType: "EAN_13", Location: "A-01", Count: 3}); ok != want {
				t.Fatalf("answer %+v, want %+v", ok, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := (events.ScanSubmitRequest{Session: "s1", Result: "EAN_13,6901234567892", ClientID: "c-1"}); got[0] != want {
				t.Fatalf("scan.submit got %+v, want %+v", got[0], want)
			}
		})
	}
}

// pagesFakeWorkers is a Workers that answers with CallFn.
type pagesFakeWorkers struct {
	CallFn func(ctx context.Context, op string, req, resp any) error
}

func (w *pagesFakeWorkers) Call(ctx context.Context, op string, req, resp any) error {
	return w.CallFn(ctx, op, req, resp)
}

func TestPagesWorkersErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
	}{
		{name: "DeadlineExceeded", err: fmt.Errorf("wrapped: %w", context.DeadlineExceeded), status: 503},
		{name: "NoWorkers", err: fmt.Errorf("events: call: %w: nats: no responders", events.ErrNoWorkers), status: 503},
		{name: "Other", err: errors.New("events: decode bind.start answer: boom"), status: 500},
		{name: "RPCErrorBadStatus", err: &events.RPCError{Status: 200, Code: "odd", Message: "奇怪"}, status: 500},
		{name: "NoAuthorizeURL", status: 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := callback.NewPages(callback.PagesConfig{PublicURL: pagesPublicURL, Logger: slog.New(slog.DiscardHandler)},
				&pagesFakeWorkers{CallFn: func(ctx context.Context, op string, req, resp any) error { return tt.err }})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bind", nil))
			if got, want := rec.Code, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %s", got, want, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "boom") {
				t.Fatalf("page shows the internal error")
			}
		})
	}
}

func TestPagesRoutes(t *testing.T) {
	env := MustPages(t, nil)
	for _, tt := range []struct {
		name, method, path string
		status             int
	}{
		{"DeleteBind", http.MethodDelete, "/bind", http.StatusMethodNotAllowed},
		{"PutAPI", http.MethodPut, "/api/scans", http.StatusMethodNotAllowed},
		{"GetQty", http.MethodGet, "/api/scans/qty", http.StatusMethodNotAllowed},
		{"GetUndo", http.MethodGet, "/api/scans/undo", http.StatusMethodNotAllowed},
		{"PostCallback", http.MethodPost, "/oauth/callback", http.StatusMethodNotAllowed},
		{"Unknown", http.MethodGet, "/nope", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := env.Do(t, tt.method, tt.path, "", nil)
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if got, want := resp.Header.Get("X-Frame-Options"), "DENY"; got != want {
				t.Fatalf("X-Frame-Options=%q, want %q", got, want)
			}
		})
	}
}

func TestPagesLogsKeepSecrets(t *testing.T) {
	const (
		session = "SESSION-SECRET-1"
		code    = "CODE-SECRET-2"
		state   = "STATE-SECRET-3"
		bind    = "BINDCODE-SECRET-4"
	)
	refuse := func(ctx context.Context, raw json.RawMessage) (any, error) {
		return nil, &events.RPCError{Status: 400, Code: "refused", Message: "不行"}
	}
	env := MustPages(t, map[string]events.RPCHandler{
		events.OpOAuthCallback: func(ctx context.Context, raw json.RawMessage) (any, error) {
			return events.SessionResponse{Session: session, Next: "scan"}, nil
		},
		events.OpBindSubmit: refuse,
		events.OpScanPage:   refuse,
		events.OpScanSubmit: refuse,
	})
	env.Get(t, "/oauth/callback?code="+code+"&state="+state)
	env.Get(t, "/oauth/callback?state="+state)
	env.Do(t, http.MethodPost, "/bind", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"session": {session}, "employee_no": {"E1"}, "bind_code": {bind}}.Encode()))
	env.Get(t, "/scan?s="+session)
	env.PostScan(t, `{"session":"`+session+`","result":"1","client_id":"c"}`)
	env.Get(t, "/bind") // no responder: 503 with the error logged

	logs := env.Logs.String()
	if !strings.Contains(logs, "staff page refused") || !strings.Contains(logs, "staff page failed") {
		t.Fatalf("logs lack the refusals and failures:\n%s", logs)
	}
	for _, secret := range []string{session, code, state, bind} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestNewPagesConfig(t *testing.T) {
	w := &pagesFakeWorkers{}
	for _, tt := range []struct {
		name    string
		url     string
		workers callback.Workers
		want    string // in the error; "" for none
	}{
		{name: "OK", url: "https://wx.example.com", workers: w},
		{name: "TrailingSlash", url: "https://wx.example.com/", workers: w},
		{name: "Missing", url: "", workers: w, want: "WXSCAN_PUBLIC_URL"},
		{name: "NoScheme", url: "wx.example.com", workers: w, want: "WXSCAN_PUBLIC_URL"},
		{name: "Query", url: "https://wx.example.com/?a=1", workers: w, want: "WXSCAN_PUBLIC_URL"},
		{name: "NoWorkers", url: "https://wx.example.com", want: "Workers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := callback.NewPages(callback.PagesConfig{PublicURL: tt.url}, tt.workers)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err=%v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err=%v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestPagesScanURLTrailingSlash(t *testing.T) {
	var got string
	h, err := callback.NewPages(callback.PagesConfig{PublicURL: "https://wx.example.com/", Logger: slog.New(slog.DiscardHandler)},
		&pagesFakeWorkers{CallFn: func(ctx context.Context, op string, req, resp any) error {
			got = req.(events.ScanPageRequest).URL
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/scan?s=abc", nil))
	if got, want := rec.Code, 200; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	if want := "https://wx.example.com/scan?s=abc"; got != want {
		t.Fatalf("url=%q, want %q", got, want)
	}
}

// Every field the pages take has a length limit (SPEC §11): a longer value
// is refused here, 400 (or 413 for a body over its cap), without a call to
// the workers; a value at the limit goes through.
func TestPagesFieldLimits(t *testing.T) {
	calls := &pagesCalls{}
	handlers := pagesWorkers(calls)
	for _, op := range []string{events.OpScanPage, events.OpScanSubmit} {
		handlers[op] = func(ctx context.Context, raw json.RawMessage) (any, error) {
			calls.Record(op, raw)
			return nil, &events.RPCError{Status: 409, Code: "answered", Message: "workers answered"}
		}
	}
	env := MustPages(t, handlers)
	form := func(session, emp, code string) string {
		return url.Values{"session": {session}, "employee_no": {emp}, "bind_code": {code}}.Encode()
	}
	scan := func(session, result, clientID string) string {
		b, _ := json.Marshal(events.ScanSubmitRequest{Session: session, Result: result, ClientID: clientID})
		return string(b)
	}
	const formType, jsonType = "application/x-www-form-urlencoded", "application/json"
	for _, tt := range []struct {
		name, method, path, ctype, body string
		status                          int
		op                              string // the workers' operation
		calls                           int
	}{
		{"EmployeeNoAtLimit", "POST", "/bind", formType, form("s1", strings.Repeat("9", 64), "123456"), 400, events.OpBindSubmit, 1},
		{"EmployeeNoTooLong", "POST", "/bind", formType, form("s1", strings.Repeat("9", 65), "123456"), 400, events.OpBindSubmit, 0},
		{"EmployeeNoMultibyteTooLong", "POST", "/bind", formType, form("s1", strings.Repeat("工", 22), "123456"), 400, events.OpBindSubmit, 0},
		{"BindCodeTooLong", "POST", "/bind", formType, form("s1", "E1001", strings.Repeat("1", 65)), 400, events.OpBindSubmit, 0},
		{"SessionTooLong", "POST", "/bind", formType, form(strings.Repeat("s", 129), "E1001", "654321"), 400, events.OpBindSubmit, 0},
		{"EmployeeNo16KB", "POST", "/bind", formType, form("s1", strings.Repeat("9", 16000), "123456"), 413, events.OpBindSubmit, 0},
		{"EmployeeNo3KB", "POST", "/bind", formType, form("s1", strings.Repeat("9", 3000), "123456"), 400, events.OpBindSubmit, 0},
		{"OAuthCodeTooLong", "GET", "/oauth/callback?state=st-1&code=" + strings.Repeat("c", 129), "", "", 400, events.OpOAuthCallback, 0},
		{"OAuthStateTooLong", "GET", "/oauth/callback?code=c&state=" + strings.Repeat("s", 129), "", "", 400, events.OpOAuthCallback, 0},
		{"OAuthAtLimit", "GET", "/oauth/callback?code=" + strings.Repeat("c", 128) + "&state=" + strings.Repeat("s", 128), "", "", 410, events.OpOAuthCallback, 1},
		{"ScanSessionTooLong", "GET", "/scan?s=" + strings.Repeat("s", 129), "", "", 400, events.OpScanPage, 0},
		{"ScanSessionAtLimit", "GET", "/scan?s=" + strings.Repeat("s", 128), "", "", 409, events.OpScanPage, 1},
		{"ScanResultAtLimit", "POST", "/api/scans", jsonType, scan("s1", "EAN_13,"+strings.Repeat("1", 321-7), "c1"), 409, events.OpScanSubmit, 1},
		{"ScanResultTooLong", "POST", "/api/scans", jsonType, scan("s1", "EAN_13,"+strings.Repeat("1", 322-7), "c1"), 400, events.OpScanSubmit, 0},
		{"ScanClientIDTooLong", "POST", "/api/scans", jsonType, scan("s1", "1", strings.Repeat("c", 65)), 400, events.OpScanSubmit, 0},
		{"ScanSessionTooLongJSON", "POST", "/api/scans", jsonType, scan(strings.Repeat("s", 129), "1", "c1"), 400, events.OpScanSubmit, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(calls.Of(tt.op))
			resp, body := env.Do(t, tt.method, tt.path, tt.ctype, strings.NewReader(tt.body))
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Fatalf("status=%d, want %d; body %.300s", got, want, body)
			}
			if got, want := len(calls.Of(tt.op))-before, tt.calls; got != want {
				t.Fatalf("%s calls=%d, want %d", tt.op, got, want)
			}
			if strings.Contains(body, strings.Repeat("9", 65)) {
				t.Fatal("the page echoes the oversized employee number")
			}
		})
	}
}
