package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/store"
)

// ConsolePrefix is where the console is served; mount it with
// mux.Handle(ConsolePrefix, c).
const ConsolePrefix = "/console/"

// consoleFiles are the console's templates, stylesheet and script.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP allows nothing from anywhere else: the stylesheet, the script
// and the live page's event stream come from the console itself, and there
// is no inline script or style.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Console is the operator's web console (SPEC §10): server-rendered pages
// under /console/ behind a sign-in with the admin token. Its changes run the
// admin API's own handlers in process (see call), so the console, the API
// and the CLI cannot drift apart. It is safe for concurrent use.
type Console struct {
	cfg      Config
	api      *server
	tokenSum []byte // nil: the console is off
	secure   bool   // cookies carry Secure (WXSCAN_PUBLIC_URL is https)
	origin   string // WXSCAN_PUBLIC_URL's origin, e.g. https://wx.example.com
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
	sessions *sessions
	signins  *limiter
	hub      *hub

	// ctx ends the live pages' event streams at Close: http.Server.Shutdown
	// waits for streaming requests without cancelling them.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewConsole returns the console for cfg (the admin API's configuration:
// off, answering 404 everywhere, when cfg.Token is empty). Call Close to end
// its live streams.
func NewConsole(cfg Config) *Console {
	api := New(cfg).(*server)
	c := &Console{cfg: api.cfg, api: api, tokenSum: api.tokenSum, mux: http.NewServeMux()}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		c.secure = u.Scheme == "https"
		c.origin = u.Scheme + "://" + u.Host
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.sessions = newSessions(c.cfg.Now)
	c.signins = newLimiter(c.cfg.Now)
	c.hub = newHub(c.ctx, c.cfg.Logger, c.liveFragment)
	c.pages = mustParsePages(c.cfg.Location)
	static, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		panic(err)
	}
	c.static = http.StripPrefix(ConsolePrefix+"static/", http.FileServerFS(static))
	c.routes()
	return c
}

// Close ends every live page's event stream and stops the hub. Safe to call
// more than once.
func (c *Console) Close() error {
	c.cancel()
	c.hub.wait()
	return nil
}

// Notify tells the console that scans of the given stocktakes (none: any)
// were recorded, changed or cancelled; their live pages update within
// about half a second. It never blocks and is safe for concurrent use (the
// workers call it after each committed change: workers.Config.OnScans).
func (c *Console) Notify(stocktakeIDs ...string) {
	if len(stocktakeIDs) == 0 {
		c.hub.notifyAll()
		return
	}
	for _, id := range stocktakeIDs {
		c.hub.notify(id)
	}
}

// page is a console page handler: it writes its answer itself, or returns an
// error for showError.
type page func(w http.ResponseWriter, r *http.Request, sess *session) error

func (c *Console) routes() {
	// Without a session: the sign-in page, and the stylesheet and script.
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.mux.Handle("GET /console/static/", c.static)

	for pattern, h := range map[string]page{
		"GET /console/{$}":                      c.stocktakesPage,
		"GET /console/stocktakes/{id}":          c.stocktakePage,
		"GET /console/stocktakes/{id}/variance": c.variancePage,
		"GET /console/staff":                    c.staffPage,
		"GET /console/bindings":                 c.bindingsPage,
		"GET /console/ops":                      c.opsPage,
	} {
		c.mux.Handle(pattern, c.signedIn(h, false))
	}
	for pattern, h := range map[string]page{
		// Downloads and the event stream: 403 without a session, no redirect.
		"GET /console/stocktakes/{id}/export": c.export,
		"GET /console/stocktakes/{id}/events": c.events,
		"GET /console/backup":                 c.backup,
	} {
		c.mux.Handle(pattern, c.signedIn(h, true))
	}
	for pattern, h := range map[string]page{
		"POST /console/logout":                   c.logout,
		"POST /console/stocktakes":               c.openStocktake,
		"POST /console/stocktakes/{id}/close":    c.closeStocktake,
		"POST /console/staff/import":             c.importStaff,
		"POST /console/items/import":             c.importItems,
		"POST /console/staff/{employee}/unlock":  c.unlock,
		"POST /console/openids/{openid}/unlock":  c.unlockOpenID,
		"POST /console/bindings/{openid}/remove": c.removeBinding,
		"POST /console/menu":                     c.pushMenu,
		"POST /console/dlq/{id}/replay":          c.replayOne,
		"POST /console/dlq/replay":               c.replayAll,
	} {
		c.mux.Handle(pattern, c.changes(h))
	}
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.tokenSum == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin: a form posted from the console carries its Origin, which
	// changes checks; no-referrer would make it "null".
	h.Set("Referrer-Policy", "same-origin")
	start := c.cfg.Now()
	rec := &statusWriter{ResponseWriter: w}
	c.mux.ServeHTTP(rec, r)
	c.cfg.Logger.Info("console request", "method", r.Method, "path", r.URL.Path,
		"status", rec.status(), "duration", c.cfg.Now().Sub(start))
}

// signedIn wraps a GET handler: without a valid session a page redirects to
// the sign-in page (303), and data (raw: downloads, the event stream) is
// refused with 403.
func (c *Console) signedIn(h page, raw bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.session(r)
		if sess == nil {
			if raw {
				http.Error(w, "请先登录", http.StatusForbidden)
				return
			}
			http.Redirect(w, r, ConsolePrefix+"login", http.StatusSeeOther)
			return
		}
		if err := h(w, r, sess); err != nil {
			c.showError(w, r, sess, err)
		}
	})
}

// changes wraps a POST handler: it runs only for a valid session and a
// request whose Origin is the console's own; anything else is 403 and
// changes nothing.
func (c *Console) changes(h page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.sameOrigin(r) {
			c.cfg.Logger.Warn("console change refused: foreign or missing Origin", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
			c.render(w, http.StatusForbidden, "refused", nil, refusedData{Message: "请求来源不对，没有做任何更改。请从控制台页面操作。"})
			return
		}
		sess := c.session(r)
		if sess == nil {
			c.render(w, http.StatusForbidden, "refused", nil, refusedData{Message: "登录已过期，没有做任何更改。请重新登录。"})
			return
		}
		if err := h(w, r, sess); err != nil {
			c.showError(w, r, sess, err)
		}
	})
}

// sameOrigin reports whether r's Origin is the console's own: the origin of
// WXSCAN_PUBLIC_URL, or the host the request was sent to (a page of another
// site cannot send our Host with an Origin naming it). A missing Origin is
// refused: every browser sends it on a POST.
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	if c.origin != "" && o == c.origin {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// checkToken compares a signed-in token with the admin token in constant
// time over their hashes, as the API's bearer check does.
func (c *Console) checkToken(tok string) bool {
	return c.api.tokenMatches(strings.TrimSpace(tok))
}

// consoleError is an error with the Chinese message and status the console
// shows.
type consoleError struct {
	code int
	msg  string
	err  error
}

func (e *consoleError) Error() string { return e.msg }
func (e *consoleError) Unwrap() error { return e.err }

func consoleErrorf(code int, msg string) error { return &consoleError{code: code, msg: msg} }

// showError answers err as the error page. A consoleError keeps its status
// and message; anything else is a 500 whose cause is logged, not shown.
func (c *Console) showError(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	var ce *consoleError
	if !errors.As(err, &ce) {
		c.cfg.Logger.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ce = &consoleError{code: http.StatusInternalServerError, msg: "出错了，请稍后再试（详情见服务器日志）。"}
	}
	c.render(w, ce.code, "error", sess, errorData{Message: ce.msg, Back: backTo(r)})
}

// backTo is the console page r came from (its Referer, when that is a
// console page of this host), for the error page's way back; "" otherwise.
func backTo(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || !strings.EqualFold(u.Host, r.Host) || !strings.HasPrefix(u.Path, ConsolePrefix) {
		return ""
	}
	return (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()
}

// layout is what every signed-in page's frame shows.
type layout struct {
	Title string
	Nav   string // the nav entry to mark current
	Flash string // a message from the change before this page
	Data  any
}

type refusedData struct{ Message string }

type errorData struct {
	Message string
	Back    string
}

// render executes page name into a buffer, so that a template error is a
// clean 500 and not half a page. sess (nil before sign-in) supplies the
// flash message left by the last change.
func (c *Console) render(w http.ResponseWriter, code int, name string, sess *session, data any) {
	t, ok := c.pages[name]
	if !ok {
		panic("admin: no console page " + name)
	}
	l := layout{Title: pageTitles[name], Nav: pageNav[name], Data: data}
	if sess != nil {
		l.Flash = c.sessions.takeFlash(sess)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "page", l); err != nil {
		c.cfg.Logger.Error("console render", "page", name, "err", err)
		http.Error(w, "出错了，请稍后再试。", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// done ends a change: the message shows on the next page, to which the
// browser is sent with 303 (post/redirect/get).
func (c *Console) done(w http.ResponseWriter, r *http.Request, sess *session, to, flash string) error {
	c.sessions.setFlash(sess, flash)
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

var pageTitles = map[string]string{
	"login": "登录", "refused": "无法操作", "error": "出错了",
	"stocktakes": "盘点", "stocktake": "盘点", "variance": "差异",
	"staff": "人员与物料", "bindings": "绑定", "ops": "运维",
}

var pageNav = map[string]string{
	"stocktakes": "stocktakes", "stocktake": "stocktakes", "variance": "stocktakes",
	"staff": "staff", "bindings": "bindings", "ops": "ops",
}

// mustParsePages parses each page of console/templates with the shared
// layout; times show in loc.
func mustParsePages(loc *time.Location) map[string]*template.Template {
	base := template.Must(template.New("").Funcs(consoleFuncs(loc)).ParseFS(consoleFiles, "console/templates/layout.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(consoleFiles, "console/templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, file := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(file, "console/templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(consoleFiles, file))
	}
	return pages
}

func consoleFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		// scope is a stocktake's location scope.
		"scope": func(st Stocktake) string {
			if len(st.Locations) == 0 {
				return "全部库位"
			}
			return strings.Join(st.Locations, "、")
		},
		"bindingState": func(state string) string {
			switch state {
			case store.StateActive:
				return "已绑定"
			case store.StateSuspended:
				return "已暂停（取消关注）"
			case "", UserUnbound:
				return "未绑定"
			}
			return state
		},
		"signed": func(n int) string {
			if n > 0 {
				return "+" + strconv.Itoa(n)
			}
			return strconv.Itoa(n)
		},
	}
}

// tokenMatches reports whether tok is the admin token, in constant time
// over the hashes.
func (s *server) tokenMatches(tok string) bool {
	if s.tokenSum == nil || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum) == 1
}

// capture buffers an in-process answer of the admin API.
type capture struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.body.Write(p)
}
func (c *capture) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

// call runs the admin API's handler for method and path in process, on
// behalf of a signed-in operator (the bearer check is the session's), and
// returns its status and body. The console's changes go through here, so
// they are the very code the API and the CLI use.
func (c *Console) call(ctx context.Context, method, path, contentType string, body io.Reader) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := &capture{header: http.Header{}}
	c.api.mux.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.code, rec.body.Bytes()
}
