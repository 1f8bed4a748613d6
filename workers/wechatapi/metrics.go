package wechatapi

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the WeChat API client's Prometheus metrics. Safe for
// concurrent use.
type Metrics struct {
	calls     *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	forced    *prometheus.CounterVec
	refreshed *prometheus.GaugeVec
}

// NewMetrics returns the client metrics, registered with reg; a nil reg
// leaves them unregistered. It panics if reg holds them already.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_api_calls_total",
			Help: "Calls to the WeChat API by endpoint and errcode (0 for success, http_NNN for an HTTP error, timeout or error when no answer came).",
		}, []string{"endpoint", "errcode"}),
		refreshes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_token_refreshes_total",
			Help: "Refreshes of the access_token and jsapi_ticket, by kind and result (ok, error).",
		}, []string{"kind", "result"}),
		forced: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_forced_refreshes_total",
			Help: "Credentials dropped because WeChat called them invalid (40001, 42001, 40014), by kind.",
		}, []string{"kind"}),
		refreshed: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wxscan_wechat_token_refreshed_timestamp_seconds",
			Help: "Unix time of the last successful refresh, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range []string{KindAccessToken, KindJSAPITicket} {
		m.refreshes.WithLabelValues(k, "ok")
		m.refreshes.WithLabelValues(k, "error")
		m.forced.WithLabelValues(k)
	}
	return m
}

// callLabel is the errcode label of a call's outcome.
func callLabel(err error) string {
	var e *Error
	var se *StatusError
	var ne net.Error
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &e):
		return strconv.Itoa(e.Code)
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}
