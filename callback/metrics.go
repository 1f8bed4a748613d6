package callback

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the WeChat endpoint's Prometheus metrics. Safe for
// concurrent use.
type Metrics struct {
	requests       *prometheus.CounterVec
	seconds        *prometheus.HistogramVec
	verifyFailures *prometheus.CounterVec

	// The children every request touches, looked up once: by mode, and by
	// mode and the usual statuses (others are looked up per request).
	modeSeconds  [numModes]prometheus.Observer
	modeRequests [numModes]map[int]*lazyCounter
}

// The request modes, as label values, in a fixed order.
var modes = [...]string{"echo", "plain", "compat", "safe"}

const (
	modeEcho = iota
	modePlain
	modeCompat
	modeSafe
	numModes
)

// cachedStatuses are the statuses whose counters are looked up once.
var cachedStatuses = []int{200, 400, 403, 404, 405, 413, 500, 503}

// Verification failure reasons, as label values.
const (
	reasonSignature = "bad_signature"
	reasonTimestamp = "stale_timestamp"
	reasonDecrypt   = "decrypt"
	reasonAppID     = "appid"
)

// NewMetrics returns the endpoint metrics, registered with reg; a nil reg
// leaves them unregistered. It panics if reg holds them already.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_callback_requests_total",
			Help: "Requests to /wechat/callback by mode (echo, plain, compat, safe) and HTTP status.",
		}, []string{"mode", "status"}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxscan_callback_request_seconds",
			Help:    "Time to answer a request to /wechat/callback, by mode; a reply-wanting event includes the wait for the worker's reply.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3.5, 5},
		}, []string{"mode"}),
		verifyFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_callback_verify_failures_total",
			Help: "Refused callbacks by reason: bad_signature, stale_timestamp, decrypt, appid, replay.",
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonSignature, reasonTimestamp, reasonDecrypt, reasonAppID, reasonReplay} {
		m.verifyFailures.WithLabelValues(r)
	}
	for i, mode := range modes {
		m.modeSeconds[i] = m.seconds.WithLabelValues(mode)
		m.modeRequests[i] = make(map[int]*lazyCounter, len(cachedStatuses))
		for _, code := range cachedStatuses {
			// Created on first use, so that /metrics lists only statuses seen.
			m.modeRequests[i][code] = &lazyCounter{vec: m.requests, labels: []string{mode, strconv.Itoa(code)}}
		}
	}
	return m
}

// instrument counts each request to next by mode and status and times it.
func (m *Metrics) instrument(now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		mode := requestMode(r)
		if c, ok := m.modeRequests[mode][rec.status]; ok {
			c.Inc()
		} else {
			m.requests.WithLabelValues(modes[mode], strconv.Itoa(rec.status)).Inc()
		}
		m.modeSeconds[mode].Observe(now().Sub(start).Seconds())
	})
}

// lazyCounter is the child of vec with labels, created at its first Inc.
// Safe for concurrent use.
type lazyCounter struct {
	vec    *prometheus.CounterVec
	labels []string
	once   sync.Once
	c      prometheus.Counter
}

func (l *lazyCounter) Inc() {
	l.once.Do(func() { l.c = l.vec.WithLabelValues(l.labels...) })
	l.c.Inc()
}

// requestMode names a request's mode (an index into modes) from its method
// and query, as the endpoint serves it: encrypt_type=aes is safe mode, a
// msg_signature without it compatible mode.
func requestMode(r *http.Request) int {
	if r.Method == http.MethodGet {
		return modeEcho
	}
	// Read as the handler reads it, so that the label is the mode the
	// request was served in.
	q := readPushQuery(r.URL.RawQuery)
	switch {
	case q[qEncryptType] == "aes":
		return modeSafe
	case q[qMsgSignature] != "":
		return modeCompat
	}
	return modePlain
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// verifyError marks a refusal as a verification failure with its reason
// label; its text is the wrapped error's.
type verifyError struct {
	reason string
	err    error
}

func (e verifyError) Error() string { return e.err.Error() }
func (e verifyError) Unwrap() error { return e.err }

func verifyFailed(reason string, err error) error { return verifyError{reason: reason, err: err} }
