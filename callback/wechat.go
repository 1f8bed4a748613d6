// Package callback is wxscan's HTTP side: the WeChat callback endpoint
// (signature checks, AES decryption, publishing the event), the health
// checks, and the WeChat crypto that `wxscan simulate` shares. It holds no
// state and no AppSecret; it reaches the workers only through two small
// interfaces, Publisher (the WeChat endpoint) and Workers (the staff pages),
// so nothing here depends on NATS.
package callback

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/events"
)

// CallbackPath is the path of the WeChat endpoint.
const CallbackPath = "/wechat/callback"

const (
	// MaxBodyBytes is the largest POST body the endpoint reads; a longer one
	// is answered 413.
	MaxBodyBytes = 64 << 10
	// publishTimeout bounds storing one event, on top of any reply wait. The
	// Publisher enforces its own, shorter timeout; this is the backstop that
	// keeps a 503 inside SPEC §8's 2 seconds.
	publishTimeout = 2 * time.Second

	defaultMaxSkew     = 300 * time.Second
	defaultReplyBudget = 3 * time.Second
)

// The kinds of failure, each one HTTP status (see statusOf). Errors wrap one
// of them with the reason, e.g. fmt.Errorf("%w: bad signature", errForbidden).
var (
	errForbidden   = errors.New("forbidden")
	errBadRequest  = errors.New("bad request")
	errTooLarge    = errors.New("request body too large")
	errUnavailable = errors.New("service unavailable")
)

// Publisher stores an event durably in JetStream; implemented by *events.Bus.
// When wait > 0 it also waits up to wait for the worker's passive reply and
// returns it (nil if none came in time or the event was a duplicate).
//
// ctx ends 2 s + wait after the call. An error means the event may not be
// stored: the endpoint answers 503 so that WeChat retries, and the retry
// carries the same Event.ID. So once the event is stored, the end of ctx or
// of wait while waiting for the reply is (nil, nil), not an error. Publish is
// called concurrently.
type Publisher interface {
	Publish(ctx context.Context, e events.Event, wait time.Duration) (*events.Reply, error)
}

// Config configures the WeChat endpoint. Zero values take the defaults noted.
type Config struct {
	// AppID is the account's AppID (WXSCAN_APPID): stamped on every event and
	// checked against the AppID inside every decrypted body.
	AppID string
	// Tokens are the current and then the previous Token (WXSCAN_TOKEN,
	// WXSCAN_TOKEN_PREV); empty strings are ignored, at least one is needed.
	Tokens []string
	// AESKeys are the current and then the previous EncodingAESKey
	// (WXSCAN_AES_KEY, WXSCAN_AES_KEY_PREV); empty strings are ignored. With
	// none, only plaintext and compatible mode are served.
	AESKeys []string
	// RequireEncryption refuses every POST that is not in safe mode with 403.
	RequireEncryption bool
	// MaxSkew is the accepted distance between a request's timestamp and
	// Now (default 300s).
	MaxSkew time.Duration
	// ReplyBudget is how long a reply-wanting event may wait for the
	// worker's passive reply (default 3s).
	ReplyBudget time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one record per refused request (the reason, never a
	// token, key or body) and per accepted event at debug level (default
	// slog.Default()).
	Logger *slog.Logger
	// Metrics receives the endpoint's measurements; nil keeps them
	// unregistered.
	Metrics *Metrics
}

// wechatHandler serves CallbackPath. It is immutable once built and so safe
// for concurrent use.
type wechatHandler struct {
	appid       string
	tokens      []string
	ciphers     []*Cipher
	requireEnc  bool
	maxSkew     time.Duration
	replyBudget time.Duration
	now         func() time.Time
	log         *slog.Logger
	metrics     *Metrics
	pub         Publisher
	// replays refuses a plaintext or compatible-mode body replayed with
	// another request's timestamp and nonce.
	replays *replayGuard
}

// NewWeChatHandler returns the WeChat endpoint of SPEC §4 at CallbackPath:
// GET answers WeChat's URL check, POST verifies, decrypts and parses a push
// and publishes it with pub, answering "success" or the passive reply only
// once pub has stored it. Mount it at CallbackPath (or "/"): other paths are
// 404, other methods 405. It fails when cfg is unusable; the messages name
// the setting.
func NewWeChatHandler(cfg Config, pub Publisher) (http.Handler, error) {
	if pub == nil {
		return nil, errors.New("callback: a Publisher is required")
	}
	h := &wechatHandler{
		appid:       cfg.AppID,
		requireEnc:  cfg.RequireEncryption,
		maxSkew:     cfg.MaxSkew,
		replyBudget: cfg.ReplyBudget,
		now:         cfg.Now,
		log:         cfg.Logger,
		metrics:     cfg.Metrics,
		pub:         pub,
	}
	if h.appid == "" {
		return nil, errors.New("callback: AppID (WXSCAN_APPID) is required")
	}
	for _, t := range cfg.Tokens {
		if t != "" {
			h.tokens = append(h.tokens, t)
		}
	}
	if len(h.tokens) == 0 {
		return nil, errors.New("callback: a Token (WXSCAN_TOKEN) is required")
	}
	for i, k := range cfg.AESKeys {
		if k == "" {
			continue
		}
		c, err := NewCipher(k, cfg.AppID)
		if err != nil {
			name := fmt.Sprintf("AESKeys[%d]", i)
			switch i {
			case 0:
				name = "WXSCAN_AES_KEY"
			case 1:
				name = "WXSCAN_AES_KEY_PREV"
			}
			return nil, fmt.Errorf("callback: %s is not a valid EncodingAESKey (43 characters of base64)", name)
		}
		h.ciphers = append(h.ciphers, c)
	}
	if h.requireEnc && len(h.ciphers) == 0 {
		return nil, errors.New("callback: WXSCAN_REQUIRE_ENCRYPTION needs an EncodingAESKey (WXSCAN_AES_KEY)")
	}
	switch {
	case h.maxSkew < 0:
		return nil, errors.New("callback: MaxSkew (WXSCAN_MAX_SKEW) must not be negative")
	case h.maxSkew == 0:
		h.maxSkew = defaultMaxSkew
	}
	switch {
	case h.replyBudget < 0:
		return nil, errors.New("callback: ReplyBudget must not be negative")
	case h.replyBudget == 0:
		h.replyBudget = defaultReplyBudget
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.replays = newReplayGuard(h.maxSkew)
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.metrics == nil {
		h.metrics = NewMetrics(nil)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CallbackPath, h.serveEcho)
	mux.HandleFunc("POST "+CallbackPath, h.servePush)
	return h.metrics.instrument(h.now, recoverer(h.log, "wechat callback", mux)), nil
}

// serveEcho answers WeChat's URL check with echostr.
func (h *wechatHandler) serveEcho(w http.ResponseWriter, r *http.Request) {
	requestID(w, r)
	q := readPushQuery(r.URL.RawQuery)
	if err := h.checkURL(q[qSignature], q[qTimestamp], q[qNonce], h.now()); err != nil {
		h.Error(w, r, err)
		return
	}
	echo := q[qEchostr]
	if echo == "" {
		h.Error(w, r, fmt.Errorf("%w: echostr is missing", errBadRequest))
		return
	}
	respond(w, "text/plain; charset=utf-8", []byte(echo))
}

// servePush handles one pushed message or event.
func (h *wechatHandler) servePush(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	reqID := requestID(w, r)
	q := readPushQuery(r.URL.RawQuery)
	ts, nonce := q[qTimestamp], q[qNonce]
	if err := h.checkURL(q[qSignature], ts, nonce, start); err != nil {
		h.Error(w, r, err)
		return
	}
	safe := q[qEncryptType] == "aes"
	msgSig := q[qMsgSignature]
	switch {
	case h.requireEnc && !safe:
		h.Error(w, r, fmt.Errorf("%w: encryption required: encrypt_type is not aes", errForbidden))
		return
	case safe && msgSig == "":
		h.Error(w, r, verifyFailed(reasonSignature, fmt.Errorf("%w: msg_signature is missing", errForbidden)))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.Error(w, r, err)
		return
	}
	m, err := h.open(body, safe, msgSig, ts, nonce)
	if err != nil {
		h.Error(w, r, err)
		return
	}
	var ev events.Event
	if m.doc != nil { // compatible mode: the body was read once, for Encrypt
		ev, err = m.doc.Event(h.appid, start)
	} else {
		ev, err = events.Parse(h.appid, m.xml, start)
	}
	if err != nil {
		h.Error(w, r, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	if m.cipher == nil {
		// The signature does not cover this body: it must be the one first
		// accepted with this timestamp and nonce (checkURL parsed ts).
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if !h.replays.admit(sec, nonce, body, start) {
			h.Error(w, r, verifyFailed(reasonReplay, fmt.Errorf("%w: timestamp and nonce already used with another body", errForbidden)))
			return
		}
	}
	ev.RequestID = reqID

	var wait time.Duration
	if ev.WantsReply() {
		wait = h.replyBudget
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout+wait)
	reply, err := h.pub.Publish(ctx, ev, wait)
	cancel()
	if err != nil {
		h.Error(w, r, fmt.Errorf("%w: publish event %s: %w", errUnavailable, ev.ID, err))
		return
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "wechat event accepted",
			slog.String("event_id", ev.ID), slog.String("request_id", reqID), slog.String("subject", ev.Subject()), slog.String("mode", m.mode),
			slog.Bool("reply", reply != nil), slog.Duration("elapsed", h.now().Sub(start)))
	}
	if reply == nil {
		respond(w, "text/plain; charset=utf-8", []byte("success"))
		return
	}
	now := h.now()
	out := PassiveTextReply(*reply, now)
	if m.cipher != nil {
		enc, err := EncryptedReply(m.cipher, m.token, strconv.FormatInt(now.Unix(), 10), newNonce(), out)
		if err != nil {
			// The event is stored: WeChat must not retry. The reply is lost.
			h.log.LogAttrs(r.Context(), slog.LevelError, "wechat passive reply not sent",
				slog.String("event_id", ev.ID), slog.String("request_id", reqID), slog.Any("error", err))
			respond(w, "text/plain; charset=utf-8", []byte("success"))
			return
		}
		out = enc
	}
	respond(w, "text/xml; charset=utf-8", out)
}

// message is a verified push body, ready to parse.
type message struct {
	xml []byte
	// doc is xml already read (compatible mode), or nil.
	doc  *events.Doc
	mode string // "plain", "compat" or "safe", for the logs
	// In safe mode, the Token that verified msg_signature and the Cipher
	// that decrypted the body: the passive reply is sealed with them.
	token  string
	cipher *Cipher
}

// open verifies msg_signature where the mode calls for it and returns the
// plaintext XML of the push. In safe mode without any EncodingAESKey it
// serves the body as compatible mode (plaintext beside Encrypt); that
// cannot happen with RequireEncryption.
func (h *wechatHandler) open(body []byte, safe bool, msgSig, ts, nonce string) (message, error) {
	if !safe && msgSig == "" {
		return message{xml: body, mode: "plain"}, nil
	}
	doc, err := events.ReadDoc(body)
	if err != nil {
		return message{}, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	enc := doc.Encrypt()
	if enc == "" {
		if safe {
			return message{}, verifyFailed(reasonDecrypt, fmt.Errorf("%w: safe mode body has no Encrypt element", errBadRequest))
		}
		return message{}, verifyFailed(reasonSignature, fmt.Errorf("%w: msg_signature given but the body has no Encrypt element", errForbidden))
	}
	token, ok := h.matchToken(msgSig, ts, nonce, enc)
	if !ok {
		return message{}, verifyFailed(reasonSignature, fmt.Errorf("%w: msg_signature does not match", errForbidden))
	}
	if !safe || len(h.ciphers) == 0 {
		return message{xml: body, doc: doc, mode: "compat"}, nil
	}
	wrongAppID := false
	for _, c := range h.ciphers {
		xml, appid, err := c.Decrypt(enc)
		if err != nil {
			continue
		}
		if appid != h.appid {
			wrongAppID = true // or a wrong key that happened to unpad: try the next
			continue
		}
		return message{xml: xml, mode: "safe", token: token, cipher: c}, nil
	}
	if wrongAppID {
		return message{}, verifyFailed(reasonAppID, fmt.Errorf("%w: decrypted body is for another AppID", errBadRequest))
	}
	return message{}, verifyFailed(reasonDecrypt, fmt.Errorf("%w: Encrypt does not decrypt with any configured EncodingAESKey", errBadRequest))
}

// checkURL checks the signature parameter with every Token, then the
// timestamp against now.
func (h *wechatHandler) checkURL(sig, ts, nonce string, now time.Time) error {
	if _, ok := h.matchToken(sig, ts, nonce); !ok {
		return verifyFailed(reasonSignature, fmt.Errorf("%w: signature does not match", errForbidden))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return verifyFailed(reasonTimestamp, fmt.Errorf("%w: timestamp is not a number", errForbidden))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > h.maxSkew || d < -h.maxSkew {
		return verifyFailed(reasonTimestamp, fmt.Errorf("%w: timestamp %d is %s away from now, over %s", errForbidden, sec, d.Round(time.Second), h.maxSkew))
	}
	return nil
}

// matchToken returns the first Token for which Signature(token, parts...)
// equals sig, compared in constant time.
func (h *wechatHandler) matchToken(sig string, parts ...string) (string, bool) {
	for _, t := range h.tokens {
		if subtle.ConstantTimeCompare([]byte(Signature(t, parts...)), []byte(sig)) == 1 {
			return t, true
		}
	}
	return "", false
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, fmt.Errorf("%w: Content-Length %d is over %d bytes", errTooLarge, r.ContentLength, MaxBodyBytes)
	}
	if r.ContentLength > 0 {
		// net/http ends the body at Content-Length: read exactly that.
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
		}
		return b, nil
	}
	b := bytes.NewBuffer(make([]byte, 0, bytes.MinRead))
	if _, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: body is over %d bytes", errTooLarge, MaxBodyBytes)
		}
		return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	return b.Bytes(), nil
}

// statusOf maps an error to its HTTP status: the one place that does.
// Errors that wrap none of the kinds are 500: a bug, never bad input.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequest), errors.Is(err, events.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error answers the request with the status err maps to and logs why: 4xx
// at info with the reason (which is also the response body), 5xx at warn
// with the cause (the body is only the status text).
func (h *wechatHandler) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if ve := (verifyError{}); errors.As(err, &ve) {
		h.metrics.verifyFailures.WithLabelValues(ve.reason).Inc()
	}
	attrs := []slog.Attr{
		slog.Int("status", code), slog.String("method", r.Method), slog.String("remote", r.RemoteAddr),
		slog.String("request_id", w.Header().Get(requestIDHeader)),
	}
	if code >= 500 {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "wechat callback failed", append(attrs, slog.Any("error", err))...)
		http.Error(w, http.StatusText(code), code)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "wechat callback refused", append(attrs, slog.String("reason", err.Error()))...)
	http.Error(w, err.Error(), code)
}

func respond(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// requestIDHeader names a request in the logs of the callback and of the
// worker that handles its event (which gets it in a NATS header), and in the
// answer.
const requestIDHeader = "X-Request-Id"

// requestID takes the X-Request-Id a proxy in front set, when it looks like
// one, or makes one, and sets it on the answer.
func requestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if len(id) == 0 || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool {
		return c <= ' ' || c > '~' || c == '"' || c == '\\'
	}) {
		id = events.RandomHex(8)
	}
	w.Header().Set(requestIDHeader, id)
	return id
}

// newNonce returns a nonce for a passive reply: decimal digits, as WeChat's
// (not events.RandomHex: the format differs, and a nonce need not be secret).
func newNonce() string {
	return strconv.FormatUint(rand.Uint64N(1e10), 10)
}

// recoverer turns a panic in next into a logged 500, so that a bug costs one
// request (which WeChat retries), not the process. what names the handler
// in the log.
func recoverer(log *slog.Logger, what string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is re-panicked as is
				panic(v)
			}
			log.LogAttrs(r.Context(), slog.LevelError, what+" panic", slog.String("path", r.URL.Path),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}
