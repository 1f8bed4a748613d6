package admin

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"
)

// Console sessions live in the workers process's memory: a restart signs
// the operator out.
const (
	// SessionTTL is how long a console sign-in lasts.
	SessionTTL = 12 * time.Hour
	// SessionCookie is the console's session cookie.
	SessionCookie = "wxscan_console"
	// maxSessions bounds the sessions kept; past it the one closest to
	// expiry is dropped.
	maxSessions = 1000
	// Failed sign-ins: at most signinFailures per client address in
	// signinWindow, then that address is refused until the window ends.
	signinFailures = 10
	signinWindow   = 10 * time.Minute
	maxLimited     = 4096 // addresses remembered
)

// session is one signed-in browser.
type session struct {
	id      string
	expires time.Time
	flash   string // shown once, on the next page
}

// sessions is the bounded set of live sessions, safe for concurrent use.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

// create starts a session of SessionTTL, dropping expired ones and, when
// full, the one that would expire first.
func (s *sessions) create() *session {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("admin: crypto/rand: " + err.Error())
	}
	now := s.now()
	sess := &session{id: hex.EncodeToString(b), expires: now.Add(SessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *session
	for id, x := range s.m {
		if !now.Before(x.expires) {
			delete(s.m, id)
			continue
		}
		if oldest == nil || x.expires.Before(oldest.expires) {
			oldest = x
		}
	}
	if len(s.m) >= maxSessions && oldest != nil {
		delete(s.m, oldest.id)
	}
	s.m[sess.id] = sess
	return sess
}

// get returns the live session id, or nil.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return nil
	}
	if !s.now().Before(sess.expires) {
		delete(s.m, id)
		return nil
	}
	return sess
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *sessions) setFlash(sess *session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.flash = msg
}

func (s *sessions) takeFlash(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := sess.flash
	sess.flash = ""
	return msg
}

// session returns r's live session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	return c.sessions.get(ck.Value)
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) the session cookie.
func (c *Console) setCookie(w http.ResponseWriter, value string, maxAge int) {
	ck := &http.Cookie{
		Name: SessionCookie, Value: value, Path: ConsolePrefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure,
	}
	if maxAge > 0 {
		ck.Expires = c.cfg.Now().Add(time.Duration(maxAge) * time.Second)
	}
	http.SetCookie(w, ck)
}

type loginData struct {
	Error     string
	SignedOut bool
}

// loginPage is GET /console/login: the sign-in form, or the stocktakes for
// a browser already signed in.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, ConsolePrefix, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", nil, loginData{SignedOut: r.URL.Query().Has("out")})
}

// login is POST /console/login (form field token): a right token starts a
// session and goes to the stocktakes; a wrong one shows the form again
// with 403. Failures are limited per client address (429 past the limit).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.sameOrigin(r) {
		c.render(w, http.StatusForbidden, "refused", nil, refusedData{Message: "请求来源不对。请从控制台的登录页面登录。"})
		return
	}
	addr := clientAddr(r)
	if c.signins.limited(addr) {
		c.cfg.Logger.Warn("console sign-in refused: too many failures", "addr", addr)
		c.render(w, http.StatusTooManyRequests, "login", nil, loginData{Error: "失败次数太多，请 10 分钟后再试。"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || !c.checkToken(r.PostForm.Get("token")) {
		c.signins.fail(addr)
		c.cfg.Logger.Warn("console sign-in failed", "addr", addr)
		c.render(w, http.StatusForbidden, "login", nil, loginData{Error: "令牌不对，请再试一次。"})
		return
	}
	sess := c.sessions.create()
	c.setCookie(w, sess.id, int(SessionTTL/time.Second))
	c.cfg.Logger.Info("console signed in", "addr", addr)
	http.Redirect(w, r, ConsolePrefix, http.StatusSeeOther)
}

// logout is POST /console/logout: it ends the session and clears the
// cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, sess *session) error {
	c.sessions.end(sess.id)
	c.setCookie(w, "", -1)
	http.Redirect(w, r, ConsolePrefix+"login?out", http.StatusSeeOther)
	return nil
}

// clientAddr is r's remote IP address.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts failed sign-ins per address in fixed windows. It is
// bounded: past maxLimited addresses the expired windows are dropped, and
// if none has expired, all are.
type limiter struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

func newLimiter(now func() time.Time) *limiter { return &limiter{now: now, m: map[string]*window{}} }

// limited reports whether addr has used up its failures in the current window.
func (l *limiter) limited(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[addr]
	if !ok {
		return false
	}
	if l.now().Sub(w.start) >= signinWindow {
		delete(l.m, addr)
		return false
	}
	return w.failures >= signinFailures
}

func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.m[addr]
	if !ok || now.Sub(w.start) >= signinWindow {
		if len(l.m) >= maxLimited {
			for a, x := range l.m {
				if now.Sub(x.start) >= signinWindow {
					delete(l.m, a)
				}
			}
			if len(l.m) >= maxLimited {
				clear(l.m)
			}
		}
		w = &window{start: now}
		l.m[addr] = w
	}
	w.failures++
}
