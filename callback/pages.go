package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/events"
)

// The paths of the staff pages (SPEC §6). NewPages serves all of them.
const (
	BindPath          = "/bind"
	OAuthCallbackPath = "/oauth/callback"
	ScanPath          = "/scan"
	// ScansAPIPath answers GET (the session's recent scans) and POST (one
	// scan); ScanQtyAPIPath and ScanUndoAPIPath change one of them.
	ScansAPIPath    = "/api/scans"
	ScanQtyAPIPath  = "/api/scans/qty"
	ScanUndoAPIPath = "/api/scans/undo"
)

const (
	// MaxBindFormBytes is the largest POST /bind body read; a longer one is
	// answered 413. Its fields fit in a few hundred bytes even when every
	// byte is percent-encoded.
	MaxBindFormBytes = 4 << 10
	// MaxScanBodyBytes is the largest body of POST /api/scans,
	// /api/scans/qty and /api/scans/undo read; a longer one is answered
	// 413.
	MaxScanBodyBytes = 8 << 10

	// Field limits in bytes, the workers' own (workers.MaxEmployeeNoLen,
	// ...; SPEC §11), checked here too so that an oversized field costs no
	// call to the workers.
	pagesMaxEmployeeNo = 64
	pagesMaxBindCode   = 64
	pagesMaxScanResult = 64 + 1 + 256 // code type, comma, scanned code
	pagesMaxClientID   = 64
	pagesMaxToken      = 128 // session tokens, OAuth codes and states
	pagesMaxScanRef    = 64  // events.PageScan.Ref

	// pagesCallTimeout bounds one call to the workers; *events.Bus has the
	// same bound of its own, so a page never hangs on an absent worker.
	pagesCallTimeout = 5 * time.Second
)

// Workers answers the staff pages; implemented by *events.Bus (Call).
//
// Call runs op (events.OpBindStart, ...) with req and decodes the answer
// into resp. It returns an *events.RPCError for a refusal, shown to the
// person as is, and an error wrapping events.ErrNoWorkers when no workers
// process answered. It is called concurrently.
type Workers interface {
	Call(ctx context.Context, op string, req, resp any) error
}

// PagesConfig configures the staff pages.
type PagesConfig struct {
	// PublicURL is the external base URL (WXSCAN_PUBLIC_URL), e.g.
	// https://wx.example.com: the /scan page's absolute URL, which
	// wx.config is signed for, is built from it.
	PublicURL string
	// Logger receives one record per refused or failed request (the
	// operation, status and error code, never a session, OAuth code, state
	// or bind code) and per answered call at debug level (default
	// slog.Default()).
	Logger *slog.Logger
}

// pagesHandler serves the staff pages. It is immutable once built and so
// safe for concurrent use; all state lives with the workers.
type pagesHandler struct {
	publicURL string
	log       *slog.Logger
	workers   Workers
	mux       http.Handler // the routes, behind recoverer
}

// NewPages returns the staff pages of SPEC §6; mount it at BindPath,
// OAuthCallbackPath, ScanPath, ScansAPIPath, ScanQtyAPIPath,
// ScanUndoAPIPath and JSSDKPath (or at "/"):
//
//   - GET /bind starts the OAuth round trip: 302 to the authorize URL that
//     the workers build (the state is signed by them and travels in the
//     URL, not in a cookie).
//   - GET /oauth/callback?code&state finishes it: the bind form, or a 302
//     to /scan?s=<session> when the round trip was started by /scan.
//   - POST /bind binds employee_no and bind_code to the session's openid.
//     Every field is length-limited here as in the workers (SPEC §11).
//   - GET /scan without s starts the OAuth round trip for the scan page;
//     with s it is the scan page (WeChat's JS-SDK and a typed fallback).
//   - GET /api/scans?s= lists the session's recent scans in the open
//     stocktake; POST /api/scans records one scan; POST /api/scans/qty and
//     /api/scans/undo change one of the session's own scans. All answer
//     JSON, errors as {"error":{"code","message"}}.
//
// Refusals by the workers (*events.RPCError) are shown with their status
// and message; when no workers answer, the pages answer 503 within about
// 5 s. The HTML pages load nothing from any other origin, are never cached
// and never framed, and send no Referer (the session is in /scan's URL).
func NewPages(cfg PagesConfig, w Workers) (http.Handler, error) {
	if w == nil {
		return nil, errors.New("callback: pages need Workers")
	}
	base, err := pagesBaseURL(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	p := &pagesHandler{publicURL: base, log: cfg.Logger, workers: w}
	if p.log == nil {
		p.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+BindPath, p.serveBindStart)
	mux.HandleFunc("POST "+BindPath, p.serveBindSubmit)
	mux.HandleFunc("GET "+OAuthCallbackPath, p.serveOAuthCallback)
	mux.HandleFunc("GET "+ScanPath, p.serveScanPage)
	mux.HandleFunc("GET "+ScansAPIPath, p.serveScanRecent)
	mux.HandleFunc("POST "+ScansAPIPath, p.serveScanSubmit)
	mux.HandleFunc("POST "+ScanQtyAPIPath, p.serveScanQty)
	mux.HandleFunc("POST "+ScanUndoAPIPath, p.serveScanUndo)
	mux.HandleFunc("GET "+JSSDKPath, serveJSSDK)
	p.mux = recoverer(p.log, "staff page", mux)
	return p, nil
}

// pagesBaseURL checks WXSCAN_PUBLIC_URL and returns it without a trailing
// slash.
func pagesBaseURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("callback: WXSCAN_PUBLIC_URL is required for the staff pages")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("callback: WXSCAN_PUBLIC_URL %q is not an http(s) base URL such as https://wx.example.com", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// ServeHTTP sets the headers every answer carries; recoverer turns a panic
// into a logged 500.
func (p *pagesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", pagesCSP)
	p.mux.ServeHTTP(w, r)
}

// serveBindStart is GET /bind.
func (p *pagesHandler) serveBindStart(w http.ResponseWriter, r *http.Request) {
	p.startOAuth(w, r, "bind")
}

// startOAuth asks the workers for a fresh state and sends the browser to
// WeChat's authorize page; WeChat brings it back to /oauth/callback.
func (p *pagesHandler) startOAuth(w http.ResponseWriter, r *http.Request, next string) {
	var resp events.BindStartResponse
	if err := p.call(r.Context(), events.OpBindStart, events.BindStartRequest{Next: next}, &resp); err != nil {
		p.errorPage(w, r, events.OpBindStart, err, pageRetryLinks(next))
		return
	}
	u, err := url.Parse(resp.AuthorizeURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.errorPage(w, r, events.OpBindStart, fmt.Errorf("callback: workers answered %s with an unusable authorize URL", events.OpBindStart), pageRetryLinks(next))
		return
	}
	pageRedirect(w, resp.AuthorizeURL)
}

// serveOAuthCallback is GET /oauth/callback?code&state, where WeChat sends
// the browser back. WeChat leaves code out when the person refused.
func (p *pagesHandler) serveOAuthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, state := q.Get("code"), q.Get("state")
	links := pageRetryLinks("bind")
	switch {
	case code == "":
		p.errorPage(w, r, events.OpOAuthCallback, pageRefusal(http.StatusBadRequest, "oauth_refused",
			"没有拿到微信授权，无法继续。请从公众号菜单重新打开，并点“允许”。"), links)
		return
	case state == "":
		p.errorPage(w, r, events.OpOAuthCallback, pageRefusal(http.StatusBadRequest, "oauth_state_missing",
			"链接不完整，请从公众号菜单重新打开。"), links)
		return
	case len(code) > pagesMaxToken || len(state) > pagesMaxToken:
		p.errorPage(w, r, events.OpOAuthCallback, pageRefusal(http.StatusBadRequest, "oauth_params_invalid",
			"链接无效，请从公众号菜单重新打开。"), links)
		return
	}
	var s events.SessionResponse
	if err := p.call(r.Context(), events.OpOAuthCallback, events.OAuthCallbackRequest{Code: code, State: state}, &s); err != nil {
		p.errorPage(w, r, events.OpOAuthCallback, err, links)
		return
	}
	if s.Session == "" {
		p.errorPage(w, r, events.OpOAuthCallback, fmt.Errorf("callback: workers answered %s without a session", events.OpOAuthCallback), links)
		return
	}
	if s.Next == "scan" {
		pageRedirect(w, ScanPath+"?s="+url.QueryEscape(s.Session))
		return
	}
	p.render(w, r, http.StatusOK, "bind", pageBindView{
		Session: s.Session, Bound: s.Bound, BoundNo: s.EmployeeNo, BoundName: s.Name,
	})
}

// serveBindSubmit is POST /bind, the bind form.
func (p *pagesHandler) serveBindSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBindFormBytes)
	if err := r.ParseForm(); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			err = fmt.Errorf("%w: bind form is over %d bytes", errTooLarge, MaxBindFormBytes)
		} else {
			err = pageRefusal(http.StatusBadRequest, "bad_form", "表单没有提交完整，请重新打开绑定页。")
		}
		p.errorPage(w, r, events.OpBindSubmit, err, pageRetryLinks("bind"))
		return
	}
	req := events.BindSubmitRequest{
		Session:    r.PostForm.Get("session"),
		EmployeeNo: strings.TrimSpace(r.PostForm.Get("employee_no")),
		BindCode:   strings.TrimSpace(r.PostForm.Get("bind_code")),
	}
	if req.Session == "" || len(req.Session) > pagesMaxToken {
		p.errorPage(w, r, events.OpBindSubmit, pageRefusal(http.StatusBadRequest, "session_missing",
			"页面已失效，请从公众号菜单重新打开绑定页。"), pageRetryLinks("bind"))
		return
	}
	view := pageBindView{Session: req.Session, EmployeeNo: req.EmployeeNo, Links: pageRetryLinks("bind")}
	if req.EmployeeNo == "" || req.BindCode == "" {
		p.formError(w, r, pageRefusal(http.StatusBadRequest, "bind_fields_missing", "请填写工号和绑定码。"), view)
		return
	}
	if len(req.EmployeeNo) > pagesMaxEmployeeNo || len(req.BindCode) > pagesMaxBindCode {
		if len(req.EmployeeNo) > pagesMaxEmployeeNo {
			view.EmployeeNo = "" // not echoed: it is not a usable employee number
		}
		p.formError(w, r, pageRefusal(http.StatusBadRequest, "too_long",
			fmt.Sprintf("工号和绑定码最长 %d 个字符，请核对后再填。", pagesMaxEmployeeNo)), view)
		return
	}
	var resp events.BindSubmitResponse
	if err := p.call(r.Context(), events.OpBindSubmit, req, &resp); err != nil {
		p.formError(w, r, err, view)
		return
	}
	p.render(w, r, http.StatusOK, "bound", resp)
}

// formError shows the bind form again with what err maps to.
func (p *pagesHandler) formError(w http.ResponseWriter, r *http.Request, err error, view pageBindView) {
	o := p.outcome(r, events.OpBindSubmit, err)
	view.Error = o.Message
	p.render(w, r, o.Status, "bind", view)
}

// serveScanPage is GET /scan[?s=session].
func (p *pagesHandler) serveScanPage(w http.ResponseWriter, r *http.Request) {
	s := r.URL.Query().Get("s")
	if s == "" {
		p.startOAuth(w, r, "scan")
		return
	}
	if len(s) > pagesMaxToken {
		p.errorPage(w, r, events.OpScanPage, pageRefusal(http.StatusBadRequest, "session_invalid",
			"页面无效，请从公众号菜单重新打开扫码页。"), pageRetryLinks("scan"))
		return
	}
	// wx.config is signed for the URL the browser shows, without the
	// fragment: the query is taken as sent, so that parameters WeChat may
	// add to a shared link stay in the signed URL.
	req := events.ScanPageRequest{Session: s, URL: p.publicURL + ScanPath + "?" + r.URL.RawQuery}
	var cfg events.ScanPageResponse
	if err := p.call(r.Context(), events.OpScanPage, req, &cfg); err != nil {
		p.errorPage(w, r, events.OpScanPage, pageOpenRefusal(err), pageRetryLinks("scan"))
		return
	}
	p.render(w, r, http.StatusOK, "scan", pageScanView{Session: s, Config: cfg, CanScan: cfg.StocktakeOpen || cfg.OpenStocktakes > 0})
}

// call runs op on the workers within pagesCallTimeout.
func (p *pagesHandler) call(ctx context.Context, op string, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, pagesCallTimeout)
	defer cancel()
	start := time.Now()
	err := p.workers.Call(ctx, op, req, resp)
	if err == nil && p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.LogAttrs(ctx, slog.LevelDebug, "staff page call", slog.String("op", op),
			slog.Duration("elapsed", time.Since(start)))
	}
	return err
}

// pageMsgOpenNotBound is said to someone not bound who opens the scan page
// or its list: the workers' words are for a scan that was refused ("扫码没有
// 记录"), and this person has scanned nothing.
const pageMsgOpenNotBound = "你还没有绑定工号，绑定后就能在这里扫码盘点。"

// pageOpenRefusal words a refusal of the scan page's opening or its list:
// not_bound says what is true for someone who only opened the page; any
// other error is returned as it is.
func pageOpenRefusal(err error) error {
	var rerr *events.RPCError
	if errors.As(err, &rerr) && rerr.Code == "not_bound" {
		o := *rerr
		o.Message = pageMsgOpenNotBound
		return &o
	}
	return err
}

// pageRefusal is a refusal made by the pages themselves, shown like the
// workers' own.
func pageRefusal(status int, code, message string) error {
	return &events.RPCError{Status: status, Code: code, Message: message}
}

// Messages for what the workers did not word themselves.
const (
	pageMsgUnavailable = "服务暂时不可用，请稍后再试"
	pageMsgTooLarge    = "提交的内容太长了。"
	pageMsgInternal    = "系统出了点问题，请稍后再试。"
)

// outcome maps an error of the pages to what the person sees: the one
// place that does. A refusal (*events.RPCError) keeps its status, code and
// message; no workers, a timeout or errUnavailable is 503; errTooLarge is
// 413; anything else is 500 with a message that says nothing of the cause.
// It logs the cause: 4xx at info with the code, 5xx at warn with the error
// (errors here never carry a session, code, state or bind code).
func (p *pagesHandler) outcome(r *http.Request, op string, err error) events.RPCError {
	var o events.RPCError
	var rerr *events.RPCError
	switch {
	case errors.As(err, &rerr) && rerr.Status >= 400 && rerr.Status <= 599:
		o = *rerr
		if o.Message == "" {
			o.Message = pageMsgInternal
			if o.Status < 500 {
				o.Message = "请求没有成功，请从公众号菜单重新打开。"
			}
		}
	case errors.Is(err, events.ErrNoWorkers), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errUnavailable):
		o = events.RPCError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: pageMsgUnavailable}
	case errors.Is(err, errTooLarge):
		o = events.RPCError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: pageMsgTooLarge}
	default:
		o = events.RPCError{Status: http.StatusInternalServerError, Code: "internal", Message: pageMsgInternal}
	}
	attrs := []slog.Attr{
		slog.String("op", op), slog.Int("status", o.Status), slog.String("code", o.Code),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
	}
	if o.Status >= 500 {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "staff page failed", append(attrs, slog.Any("error", err))...)
	} else {
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "staff page refused", attrs...)
	}
	return o
}

// errorPage answers with the error page for err.
func (p *pagesHandler) errorPage(w http.ResponseWriter, r *http.Request, op string, err error, links []pageLink) {
	o := p.outcome(r, op, err)
	title := "出错了"
	switch {
	case o.Status == http.StatusServiceUnavailable:
		title = "请稍后再试"
	case o.Status < 500:
		title = "无法继续"
	}
	p.render(w, r, o.Status, "error", pageErrorView{Title: title, Status: o.Status, Code: o.Code, Message: o.Message, Links: links})
}

// errorJSON answers an /api/scans request for op with
// {"error":{"code","message"}}; the message is plain text (the scan page
// shows it as text).
func (p *pagesHandler) errorJSON(w http.ResponseWriter, r *http.Request, op string, err error) {
	o := p.outcome(r, op, err)
	pageJSON(w, o.Status, map[string]any{"error": map[string]string{"code": o.Code, "message": pagePlainText(o.Message)}})
}

// pageChatLink is a link in a message of the workers: they word messages
// for the chat too, where WeChat shows <a href="URL">label</a> as a link.
var pageChatLink = regexp.MustCompile(`<a href="([^"<>]*)">([^<>]*)</a>`)

// pageSpan is a piece of a message: text, or a link when Href is set.
type pageSpan struct{ Text, Href string }

// pageSpans splits a message into text and its chat links, so that a page
// shows a link as a link and never its markup. A link that is not http(s)
// or a path stays text.
func pageSpans(msg string) []pageSpan {
	var spans []pageSpan
	last := 0
	for _, m := range pageChatLink.FindAllStringSubmatchIndex(msg, -1) {
		href, label := msg[m[2]:m[3]], msg[m[4]:m[5]]
		if m[0] > last {
			spans = append(spans, pageSpan{Text: msg[last:m[0]]})
		}
		if pageLinkable(href) {
			spans = append(spans, pageSpan{Text: label, Href: href})
		} else {
			spans = append(spans, pageSpan{Text: label})
		}
		last = m[1]
	}
	if last < len(msg) {
		spans = append(spans, pageSpan{Text: msg[last:]})
	}
	return spans
}

// pagePlainText is a message with its chat links replaced by their labels.
func pagePlainText(msg string) string {
	return pageChatLink.ReplaceAllString(msg, "$2")
}

// pageLinkable reports whether a page may link to href: an absolute
// http(s) URL or a path on this site (not //host, nor a backslash, which
// browsers read as a slash).
func pageLinkable(href string) bool {
	u, err := url.Parse(href)
	if err != nil || strings.Contains(href, `\`) {
		return false
	}
	if u.Scheme == "" {
		return u.Host == "" && strings.HasPrefix(u.Path, "/")
	}
	return (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// render executes the page template name into a buffer, so that a
// template error is a clean 500 and not half a page.
func (p *pagesHandler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b bytes.Buffer
	if err := pagesTemplates.ExecuteTemplate(&b, name, data); err != nil {
		p.log.LogAttrs(r.Context(), slog.LevelError, "staff page render failed",
			slog.String("page", name), slog.Any("error", err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func pageJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"`+pageMsgInternal+`"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// pageRedirect answers 302 with exactly location (http.Redirect would rewrite
// a relative one).
func pageRedirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
}

// pageLink is a way out of a page.
type pageLink struct{ Href, Label string }

// pageRetryLinks are the ways to start over for a flow ("bind" or "scan").
func pageRetryLinks(flow string) []pageLink {
	if flow == "scan" {
		return []pageLink{{ScanPath, "重新打开扫码页"}, {BindPath, "去绑定工号"}}
	}
	return []pageLink{{BindPath, "重新打开绑定页"}}
}

type pageErrorView struct {
	Title   string
	Status  int
	Code    string
	Message string
	Links   []pageLink
}

type pageBindView struct {
	Session    string
	EmployeeNo string
	Error      string
	Bound      bool
	BoundNo    string
	BoundName  string
	Links      []pageLink
}

type pageScanView struct {
	Session string
	Config  events.ScanPageResponse
	// CanScan is whether a stocktake is open at all: a scan (at least of a
	// location code) can be recorded.
	CanScan bool
}
