// Package fakewechat is a fake of the WeChat Official Account API, as an http.Handler, for tests (over
// httptest) and for running the whole flow on one machine (`wxscan fakewechat`, `wxscan dev`).
//
// It serves cgi-bin/stable_token (and, for compatibility, cgi-bin/token), cgi-bin/ticket/getticket, sns/oauth2/access_token, sns/oauth2/refresh_token,
// sns/userinfo, cgi-bin/message/custom/send, cgi-bin/menu/create and the OAuth authorize page
// /connect/oauth2/authorize, with WeChat's JSON answers and errcodes. Test knobs inject failures and
// delays and read back what was sent. A Server and its knobs are safe for concurrent use.
package fakewechat

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultOpenID is the fake user of the authorize page when the request names none.
const DefaultOpenID = "oDevUser0001"

const (
	codeTTL         = 5 * time.Minute
	oauthTokenTTL   = 7200 * time.Second
	refreshTokenTTL = 30 * 24 * time.Hour
	maxBody         = 1 << 20
	maxCallTimes    = 1024
)

// Config configures a Server.
type Config struct {
	AppID     string        // the accepted appid; empty accepts any
	AppSecret string        // the accepted secret; empty accepts any
	TokenTTL  time.Duration // lifetime of access tokens and jsapi tickets; default 7200 s
	Logger    *slog.Logger  // requests are logged at debug level
	Now       func() time.Time
}

// Message is a message received by cgi-bin/message/custom/send.
type Message struct {
	ToUser  string
	MsgType string
	Content string          // text.content for text messages
	Raw     json.RawMessage // the request body
}

// Server is the fake WeChat API. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu                         sync.Mutex
	tokens                     map[string]*apiToken // every access token, of cgi-bin/token and cgi-bin/stable_token
	stable                     string               // the current cgi-bin/stable_token token, if any
	stableNormal, stableForced int
	tickets                    map[string]time.Time
	codes                      map[string]*oauthCode
	oauthTokens                map[string]*oauthGrant // web-page access tokens
	refreshes                  map[string]*oauthGrant // refresh tokens
	failNext                   map[string]*failRule
	delays                     map[string]time.Duration
	calls                      map[string]int
	callTimes                  map[string][]time.Time // the last maxCallTimes arrivals per path
	sent                       []Message
	menu                       json.RawMessage
}

type apiToken struct {
	expiresAt time.Time
	revoked   bool
}

type oauthCode struct {
	openid   string
	scope    string
	snapshot bool
	issuedAt time.Time
	used     bool
}

type oauthGrant struct {
	openid    string
	scope     string
	snapshot  bool
	expiresAt time.Time
}

// failRule answers code to the next n calls, or, when until is set, to every call before until.
type failRule struct {
	code  int
	n     int
	until time.Time
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 7200 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		mux:         http.NewServeMux(),
		tokens:      map[string]*apiToken{},
		tickets:     map[string]time.Time{},
		codes:       map[string]*oauthCode{},
		oauthTokens: map[string]*oauthGrant{},
		refreshes:   map[string]*oauthGrant{},
		failNext:    map[string]*failRule{},
		delays:      map[string]time.Duration{},
		calls:       map[string]int{},
		callTimes:   map[string][]time.Time{},
	}
	s.route("/cgi-bin/token", s.token)
	s.route("/cgi-bin/stable_token", s.stableToken)
	s.route("/cgi-bin/ticket/getticket", s.getTicket)
	s.route("/sns/oauth2/access_token", s.oauthAccessToken)
	s.route("/sns/oauth2/refresh_token", s.oauthRefresh)
	s.route("/sns/userinfo", s.userInfo)
	s.route("/cgi-bin/message/custom/send", s.customSend)
	s.route("/cgi-bin/menu/create", s.menuCreate)
	s.route("/connect/oauth2/authorize", s.authorize)
	return s
}

// ServeHTTP serves the fake API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// reply is a handler's answer: a JSON body, a redirect, or plain text with a status.
type reply struct {
	status   int
	errcode  int
	body     any    // JSON
	text     string // text/plain, when body is nil
	location string // redirect target for 302
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

func fail(code int, msg string) reply {
	return reply{status: http.StatusOK, errcode: code, body: apiError{code, msg}}
}

type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// route registers h for path, behind call counting, injected delays and injected failures.
func (s *Server) route(path string, h func(*http.Request) reply) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.mu.Lock()
		s.calls[path]++
		times := s.callTimes[path]
		if len(times) == maxCallTimes {
			times = times[1:]
		}
		s.callTimes[path] = append(times, s.now())
		d := s.delays[path]
		s.mu.Unlock()
		if d > 0 && !s.wait(r, d) {
			return
		}
		rep, injected := s.injected(path)
		if !injected {
			rep = h(r)
		}
		s.write(w, rep)
		s.log.Debug("fakewechat: request", "method", r.Method, "path", path,
			"status", rep.status, "errcode", rep.errcode, "injected", injected, "took", time.Since(start))
	})
}

// wait delays r by d and reports false when its client gave up meanwhile: such a call has no effect.
// The body is read first, because net/http notices a client that went away only once the body has
// been consumed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return r.Context().Err() == nil
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) injected(path string) (reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failNext[path]
	if f == nil {
		return reply{}, false
	}
	if !f.until.IsZero() {
		if !s.now().Before(f.until) {
			delete(s.failNext, path)
			return reply{}, false
		}
	} else if f.n--; f.n <= 0 {
		delete(s.failNext, path)
	}
	if f.code >= 500 && f.code <= 599 {
		return reply{status: f.code, text: http.StatusText(f.code)}, true
	}
	return fail(f.code, errmsg(f.code)), true
}

func (s *Server) write(w http.ResponseWriter, rep reply) {
	switch {
	case rep.location != "":
		w.Header().Set("Location", rep.location)
		w.WriteHeader(http.StatusFound)
	case rep.body != nil:
		data, err := json.Marshal(rep.body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; encoding=utf-8")
		w.WriteHeader(rep.status)
		w.Write(data)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.text+"\n")
	}
}

// errmsg is WeChat's errmsg for the codes the fake answers or tests inject.
func errmsg(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40029:
		return "invalid code"
	case 40030:
		return "invalid refresh_token"
	case 40125:
		return "invalid appsecret"
	case 40163:
		return "code been used"
	case 41001:
		return "access_token missing"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 41008:
		return "missing code"
	case 42001:
		return "access_token expired"
	case 43002:
		return "require POST method"
	case 43004:
		return "require subscribe"
	case 44002:
		return "empty post data"
	case 45009:
		return "reach max api daily quota limit"
	case 45015:
		return "response out of time limit or subscription is canceled"
	case 47001:
		return "data format error"
	case 48001:
		return "api unauthorized"
	}
	return "injected error"
}

func failCode(code int) reply { return fail(code, errmsg(code)) }

func (s *Server) now() time.Time { return s.cfg.Now() }

func newSecret() string { return rand.Text() + rand.Text() }

// checkApp validates appid and secret as cgi-bin/token, cgi-bin/stable_token and sns/oauth2 do.
func (s *Server) checkApp(q url.Values, needSecret bool) (reply, bool) {
	appid, secret := q.Get("appid"), q.Get("secret")
	switch {
	case appid == "":
		return failCode(41002), false
	case s.cfg.AppID != "" && appid != s.cfg.AppID:
		return failCode(40013), false
	case needSecret && secret == "":
		return failCode(41004), false
	case needSecret && s.cfg.AppSecret != "" && secret != s.cfg.AppSecret:
		return failCode(40125), false
	}
	return reply{}, true
}

// checkToken validates the access_token query parameter.
func (s *Server) checkToken(r *http.Request) (reply, bool) {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return failCode(41001), false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[tok]
	switch {
	case t == nil || t.revoked:
		return failCode(40001), false
	case !s.now().Before(t.expiresAt):
		return failCode(42001), false
	}
	return reply{}, true
}

func (s *Server) token(r *http.Request) reply {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		return failCode(40002)
	}
	if rep, ok := s.checkApp(q, true); !ok {
		return rep
	}
	s.mu.Lock()
	tok := s.issueTokenLocked(s.now())
	s.mu.Unlock()
	return ok(tokenAnswer(tok, s.cfg.TokenTTL))
}

func (s *Server) getTicket(r *http.Request) reply {
	if rep, ok := s.checkToken(r); !ok {
		return rep
	}
	if r.URL.Query().Get("type") != "jsapi" {
		return fail(40097, "invalid args")
	}
	t := rand.Text()
	now := s.now()
	s.mu.Lock()
	for k, exp := range s.tickets {
		if now.After(exp) {
			delete(s.tickets, k)
		}
	}
	s.tickets[t] = now.Add(s.cfg.TokenTTL)
	s.mu.Unlock()
	return ok(map[string]any{"errcode": 0, "errmsg": "ok", "ticket": t, "expires_in": int(s.cfg.TokenTTL / time.Second)})
}

func (s *Server) customSend(r *http.Request) reply {
	if rep, ok := s.checkToken(r); !ok {
		return rep
	}
	raw, rep, ok := readJSON(r)
	if !ok {
		return rep
	}
	var m struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return failCode(47001)
	}
	if m.ToUser == "" {
		return failCode(40003)
	}
	if m.MsgType == "" {
		return fail(40008, "invalid message type")
	}
	s.mu.Lock()
	s.sent = append(s.sent, Message{ToUser: m.ToUser, MsgType: m.MsgType, Content: m.Text.Content, Raw: raw})
	s.mu.Unlock()
	return fail(0, "ok")
}

func (s *Server) menuCreate(r *http.Request) reply {
	if rep, ok := s.checkToken(r); !ok {
		return rep
	}
	raw, rep, ok := readJSON(r)
	if !ok {
		return rep
	}
	var m struct {
		Button []json.RawMessage `json:"button"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return failCode(47001)
	}
	if len(m.Button) == 0 || len(m.Button) > 3 {
		return fail(40016, "invalid button size")
	}
	s.mu.Lock()
	s.menu = raw
	s.mu.Unlock()
	return fail(0, "ok")
}

// readJSON reads a POST body that must be JSON.
func readJSON(r *http.Request) (json.RawMessage, reply, bool) {
	if r.Method != http.MethodPost {
		return nil, failCode(44002), false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return nil, failCode(44002), false
	}
	if !json.Valid(data) {
		return nil, failCode(47001), false
	}
	return json.RawMessage(data), reply{}, true
}
