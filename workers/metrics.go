package workers

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the workers' Prometheus metrics. Safe for concurrent use.
type Metrics struct {
	scans      prometheus.Counter
	refused    *prometheus.CounterVec
	replies    *prometheus.CounterVec
	duplicates prometheus.Counter
	// batchEvents and batchCommit describe the consumer's store
	// transactions: how many events each records, and how long it takes,
	// its fsync included. A scan's passive reply waits for its batch's
	// commit, so a disk that stalls shows here first.
	batchEvents prometheus.Histogram
	batchCommit prometheus.Histogram
}

// Reply paths, as label values.
const (
	pathPassive    = "passive"
	pathCustomSend = "custom_send"
)

// NewMetrics returns the workers metrics, registered with reg; a nil reg
// leaves them unregistered. It panics if reg holds them already.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		scans: f.NewCounter(prometheus.CounterOpts{
			Name: "wxscan_scans_recorded_total",
			Help: "Scans recorded in the store, from the chat and from the /scan page.",
		}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_scans_refused_total",
			Help: "Scans not recorded, by reason (not_bound, suspended, not_allowed, no_stocktake, no_location, out_of_scope, bad_code).",
		}, []string{"reason"}),
		replies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_replies_total",
			Help: "Chat replies delivered, by path: passive (in the callback's answer) or custom_send (message/custom/send).",
		}, []string{"path"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "wxscan_workers_duplicates_total",
			Help: "Events delivered again after they were processed (redeliveries, replays), absorbed by the event id.",
		}),
		batchEvents: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "wxscan_workers_batch_events",
			Help:    "Events per batch the workers record in one store transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256, the default batch limit
		}),
		batchCommit: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "wxscan_workers_batch_commit_seconds",
			Help:    "Time of the store transaction that records one batch, its fsync included; failed ones too.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 13), // 0.5 ms to about 2 s
		}),
	}
	for _, r := range []refusal{refusedNotBound, refusedSuspended, refusedNotAllowed, refusedNoStocktake, refusedNoLocation, refusedOutOfScope, refusedBadCode} {
		m.refused.WithLabelValues(string(r))
	}
	m.replies.WithLabelValues(pathPassive)
	m.replies.WithLabelValues(pathCustomSend)
	return m
}

// countScan counts one committed scan outcome; a location change is
// neither recorded nor refused.
func (m *Metrics) countScan(out scanOutcome) {
	switch {
	case out.refused != "":
		m.refused.WithLabelValues(string(out.refused)).Inc()
	case out.count > 0:
		m.scans.Inc()
	}
}
