package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the bus's Prometheus metrics: publishing (latency, results,
// duplicates absorbed by JetStream's message-id window) and the consumer's
// outcomes and redeliveries. Safe for concurrent use.
type Metrics struct {
	published      *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	// The children of published, looked up once: every publish counts.
	stored, duplicate, pubError prometheus.Counter
	outcomes                    *prometheus.CounterVec
	redeliveries                prometheus.Counter
}

// Publish results and consumer outcomes, as label values.
const (
	resultStored    = "stored"
	resultDuplicate = "duplicate"
	resultError     = "error"

	outcomeAck        = "ack"
	outcomeRetry      = "retry"
	outcomeDeadLetter = "dead_letter"
)

// NewMetrics returns the bus metrics, registered with reg; a nil reg
// leaves them unregistered. It panics if reg holds them already.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		published: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_events_published_total",
			Help: "Events offered to JetStream by result: stored, duplicate (a WeChat retry absorbed by the dedupe key) or error (answered 503).",
		}, []string{"result"}),
		publishSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "wxscan_events_publish_seconds",
			Help:    "Time from publishing an event to JetStream's acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		outcomes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wxscan_consumer_events_total",
			Help: "Deliveries to the workers' consumer by outcome: ack, retry (NakWithDelay) or dead_letter (moved to WECHAT_DLQ).",
		}, []string{"outcome"}),
		redeliveries: f.NewCounter(prometheus.CounterOpts{
			Name: "wxscan_consumer_redeliveries_total",
			Help: "Deliveries that were not an event's first.",
		}),
	}
	m.stored = m.published.WithLabelValues(resultStored)
	m.duplicate = m.published.WithLabelValues(resultDuplicate)
	m.pubError = m.published.WithLabelValues(resultError)
	for _, o := range []string{outcomeAck, outcomeRetry, outcomeDeadLetter} {
		m.outcomes.WithLabelValues(o)
	}
	return m
}

// streamCollector reads the streams' depth and a consumer's lag from
// JetStream at scrape time.
type streamCollector struct {
	bus     *Bus
	durable string

	streamMsgs, streamBytes, dlqMsgs, pending, ackPending, redelivered, up *prometheus.Desc
}

// StreamCollector returns a collector that asks JetStream, at each scrape,
// for the WECHAT and WECHAT_DLQ depth and the durable consumer's lag,
// unacknowledged and redelivered counts. A scrape waits at most 1 s for
// NATS; when NATS does not answer, only wxscan_nats_up (0) is reported.
func (b *Bus) StreamCollector(durable string) prometheus.Collector {
	return &streamCollector{
		bus: b, durable: durable,
		up:          prometheus.NewDesc("wxscan_nats_up", "1 when JetStream answered this scrape's status query.", nil, nil),
		streamMsgs:  prometheus.NewDesc("wxscan_stream_messages", "Messages in the WECHAT stream.", nil, nil),
		streamBytes: prometheus.NewDesc("wxscan_stream_bytes", "Bytes in the WECHAT stream.", nil, nil),
		dlqMsgs:     prometheus.NewDesc("wxscan_dlq_messages", "Dead letters in the WECHAT_DLQ stream.", nil, nil),
		pending:     prometheus.NewDesc("wxscan_consumer_pending", "Events not yet delivered to the consumer (its lag).", []string{"consumer"}, nil),
		ackPending:  prometheus.NewDesc("wxscan_consumer_ack_pending", "Events delivered to the consumer and not yet acknowledged.", []string{"consumer"}, nil),
		redelivered: prometheus.NewDesc("wxscan_consumer_redelivered", "Events the consumer has had redelivered and not yet acknowledged.", []string{"consumer"}, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.streamMsgs, c.streamBytes, c.dlqMsgs, c.pending, c.ackPending, c.redelivered} {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.bus.Status(ctx, c.durable)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.streamMsgs, prometheus.GaugeValue, float64(s.StreamMsgs))
	ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(s.StreamBytes))
	ch <- prometheus.MustNewConstMetric(c.dlqMsgs, prometheus.GaugeValue, float64(s.DLQMsgs))
	if s.Consumer != "" {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), s.Consumer)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(s.AckPending), s.Consumer)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(s.Redelivered), s.Consumer)
	}
}
