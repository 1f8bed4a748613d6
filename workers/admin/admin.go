// Package admin is wxscan's admin HTTP API (SPEC §7, §9): the staff
// directory (import, list with bindings and bind lockouts, unlock), the item
// master import, stocktakes with scope and book stock, scan exports (scans,
// summary, variance), bindings, the custom menu, the dead-letter queue and a
// status summary, all as JSON behind a bearer token. The functions the
// handlers share with the console (ImportUsers, ImportItems,
// OpenStocktakeFrom, ExportTable, Users, UnlockUser) take the store and
// answer the API's errors. Its wire
// types are in api.go; Client (client.go) is its Go client, which the
// `wxscan` operator commands are a thin layer over.
//
// Every answer carries the header Wxscan-Admin (OffHeader): "on", or "off"
// while the API is off.
//
// Every error answer is JSON {"error":"<one English line>"} with a 4xx or 5xx
// status: 400 bad input, 401 missing or wrong token, 404 unknown stocktake,
// employee, binding or dead letter (and every path while the API is off), 409 a
// conflict with the current state, 413 a body over its limit, 502 WeChat
// refused a call, 503 NATS or WeChat unreachable.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// MaxImportBytes bounds the body of POST /admin/users/import.
const MaxImportBytes = 10 << 20

// Config configures the admin API. Zero fields take the documented defaults.
type Config struct {
	// Token is WXSCAN_ADMIN_TOKEN. Empty: the admin API is off and every path
	// answers 404.
	Token string
	DB    *store.DB
	// Bus serves the DLQ endpoints and the stream part of status; nil answers
	// 503 there.
	Bus *events.Bus
	// WeChat pushes the menu and reports the last token refresh; nil answers
	// 503 for the menu and leaves the token fields out of status.
	WeChat *wechatapi.Client
	// PublicURL is WXSCAN_PUBLIC_URL, the base of the menu's page URLs.
	PublicURL string
	// Durable is the consumer whose lag status reports; default
	// events.DefaultDurable.
	Durable string
	Now     func() time.Time
	Logger  *slog.Logger

	// Location is the account's time zone (WXSCAN_TIMEZONE), for the times
	// in exports; default Asia/Shanghai.
	Location *time.Location
}

// New returns the admin API. It serves full paths under /admin/ (mount it
// with mux.Handle("/admin/", h), without StripPrefix). The handler is safe
// for concurrent use. It logs each request (method, path, status, duration),
// never the token.
func New(cfg Config) http.Handler {
	if cfg.Durable == "" {
		cfg.Durable = events.DefaultDurable
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = shanghai
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, mux: http.NewServeMux()}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.tokenSum = sum[:]
	}
	s.routes()
	return s
}

type server struct {
	cfg      Config
	mux      *http.ServeMux
	tokenSum []byte // sha256 of the token; nil: the API is off
}

// handlerFunc is an endpoint: it writes its answer itself on success, and
// returns an error for writeError to answer before anything was written.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *server) routes() {
	for pattern, h := range map[string]handlerFunc{
		"POST /admin/users/import":               s.importUsers,
		"GET /admin/users":                       s.listUsers,
		"POST /admin/users/{employee_no}/unlock": s.unlockUser,
		"POST /admin/items/import":               s.importItems,
		"POST /admin/bindings/{openid}/unlock":   s.unlockOpenID,
		"POST /admin/stocktakes":                 s.openStocktake,
		"GET /admin/stocktakes":                  s.listStocktakes,
		"POST /admin/stocktakes/{id}/close":      s.closeStocktake,
		"GET /admin/stocktakes/{id}/scans":       s.exportScans,
		"GET /admin/bindings":                    s.listBindings,
		"DELETE /admin/bindings/{openid}":        s.removeBinding,
		"POST /admin/menu":                       s.pushMenu,
		"GET /admin/dlq":                         s.listDLQ,
		"POST /admin/dlq/replay":                 s.replayAll,
		"POST /admin/dlq/{id}/replay":            s.replayOne,
		"GET /admin/status":                      s.status,
		"GET /admin/backup":                      s.backup,
	} {
		s.mux.Handle(pattern, h.serve(s))
	}
}

func (h handlerFunc) serve(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	rec := &statusWriter{ResponseWriter: w}
	s.serve(rec, r)
	s.cfg.Logger.Info("admin request", "method", r.Method, "path", r.URL.Path,
		"status", rec.status(), "duration", s.cfg.Now().Sub(start))
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(OffHeader, "on")
	if s.tokenSum == nil {
		w.Header().Set(OffHeader, "off")
		writeJSON(w, http.StatusNotFound, ErrorBody{"admin API is off: set WXSCAN_ADMIN_TOKEN on the server"})
		return
	}
	if err := s.authorize(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxscan admin"`)
		writeJSON(w, http.StatusUnauthorized, ErrorBody{err.Error()})
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// No route: answer the mux's 404 or 405 (with its Allow header) as JSON.
		probe := &probeWriter{header: http.Header{}}
		s.mux.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code := probe.code
		if code == 0 || code == http.StatusOK {
			code = http.StatusNotFound
		}
		msg := fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
		}
		writeJSON(w, code, ErrorBody{msg})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorize checks the bearer token in constant time (over its hash, so the
// token's length does not leak either).
func (s *server) authorize(r *http.Request) error {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("missing bearer token: send Authorization: Bearer <WXSCAN_ADMIN_TOKEN>")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum) != 1 {
		return errors.New("wrong bearer token")
	}
	return nil
}

// apiError is an error whose status and message a handler chose. It wraps
// the cause (if any), which is not shown.
type apiError struct {
	code int
	msg  string
	err  error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

// errorf returns an apiError with status code.
func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// explain gives err a one-line message for the client; its status is still
// found from err by statusOf.
func explain(err error, format string, args ...any) error {
	return &apiError{msg: fmt.Sprintf(format, args...), err: err}
}

// prefixed puts prefix before err's message, keeping its status.
func prefixed(err error, prefix string) error {
	return &apiError{code: statusOf(err), msg: prefix + err.Error(), err: err}
}

// storeMessage is a store error's message for the client: without the
// package's "store: " and the sentinel's ": conflict" at its end.
func storeMessage(err, sentinel error) string {
	msg := strings.TrimPrefix(err.Error(), "store: ")
	return strings.TrimSuffix(msg, ": "+sentinel.Error())
}

// errUnavailable marks an error of a dependency that cannot be reached (NATS,
// WeChat): 503.
var errUnavailable = errors.New("unavailable")

// unavailable wraps err from a dependency as a 503 unless it is one of the
// sentinels statusOf maps to a 4xx.
func unavailable(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if code := statusOf(err); code != http.StatusInternalServerError {
		return explain(err, "%s", msg)
	}
	return &apiError{msg: msg + ": " + oneLine(err.Error()), err: errors.Join(errUnavailable, err)}
}

// statusOf is the one place that maps errors to HTTP statuses.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) && ae.code != 0 {
		return ae.code
	}
	var tooBig *http.MaxBytesError
	var wx *wechatapi.Error
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, store.ErrNotFound), errors.Is(err, events.ErrNoSuchDeadLetter):
		return http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest
	case errors.As(err, &wx):
		return http.StatusBadGateway
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers err as JSON with statusOf's status. A 500's cause is
// logged, not shown.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	msg := oneLine(err.Error())
	var tooBig *http.MaxBytesError
	switch {
	case code == http.StatusInternalServerError:
		s.cfg.Logger.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (see the server's log)"
	case errors.As(err, &tooBig):
		msg = fmt.Sprintf("body is larger than %d bytes", tooBig.Limit)
	case code >= 500:
		s.cfg.Logger.Warn("admin request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, ErrorBody{msg})
}

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// oneLine folds line breaks so that an error message stays one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// probeWriter captures what the mux would answer for an unrouted request.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	return len(b), nil
}
func (p *probeWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}
