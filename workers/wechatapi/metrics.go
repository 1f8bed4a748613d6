package wechatapi

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the WeChat API client's Prometheus metrics. It is a
// prometheus.Collector; register it once. Safe for concurrent use.
type Metrics struct {
	calls     *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	forced    *prometheus.CounterVec
	refreshed *prometheus.GaugeVec
}

// NewMetrics returns unregistered client metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_api_calls_total",
			Help: "Calls to the WeChat API by endpoint and errcode (0 for success, http_NNN for an HTTP error, timeout or error when no answer came).",
		}, []string{"endpoint", "errcode"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_token_refreshes_total",
			Help: "Refreshes of the access_token and jsapi_ticket, by kind and result (ok, error).",
		}, []string{"kind", "result"}),
		forced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_wechat_forced_refreshes_total",
			Help: "Credentials dropped because WeChat called them invalid (40001, 42001, 40014), by kind.",
		}, []string{"kind"}),
		refreshed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
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

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.refreshes.Describe(ch)
	m.forced.Describe(ch)
	m.refreshed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.refreshes.Collect(ch)
	m.forced.Collect(ch)
	m.refreshed.Collect(ch)
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
