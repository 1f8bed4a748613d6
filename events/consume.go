package events

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one event. JetStream delivers at least once, so a
// Handler may run more than once for one event and must be idempotent on
// e.ID. A nil error acks the event; an error wrapped with Permanent
// dead-letters it at once; any other error redelivers it later.
type Handler func(ctx context.Context, e Event) error

// Middleware wraps a Handler (recover, logging, metrics, idempotency).
type Middleware func(Handler) Handler

// BatchHandler processes the events of one fetched batch together (so that
// the workers write one bbolt transaction per batch) and returns one error
// per event, in order, with the same meaning as a Handler's.
type BatchHandler func(ctx context.Context, evs []Event) []error

// StagedHandler handles one fetched batch in two stages. It runs the first
// stage (the workers record the batch in one store transaction) and returns
// finish, the second stage (the workers deliver the replies), whose result
// is one error per event, in order, with the meaning of a BatchHandler's.
// ConsumeStaged runs first stages one at a time, in delivery order, and lets
// a batch's finish run while the next batch runs its first stage, so that
// waiting on the network in one batch does not hold up the next one's
// transaction. A handler that must keep an order across batches (replies to
// one person) chains its finishes in its first stage.
type StagedHandler func(ctx context.Context, evs []Event) (finish func() []error)

// Each adapts a Handler to a BatchHandler, calling it once per event.
func Each(h Handler) BatchHandler {
	return func(ctx context.Context, evs []Event) []error {
		errs := make([]error, len(evs))
		for i, e := range evs {
			errs[i] = h(ctx, e)
		}
		return errs
	}
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that no retry can fix: the event goes to
// WECHAT_DLQ with err as the reason.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// DLQ headers on messages in the WECHAT_DLQ stream.
const (
	HeaderDLQReason      = "Wxscan-Dlq-Reason"
	HeaderDLQAttempts    = "Wxscan-Dlq-Attempts"
	HeaderDLQFirstFailed = "Wxscan-Dlq-First-Failed"
	HeaderDLQStreamSeq   = "Wxscan-Dlq-Stream-Seq"
)

// DefaultDurable is the name of the workers' durable consumer on WECHAT.
const DefaultDurable = "workers"

// workerKinds are the pushes the workers act on (workers.Service.apply), as
// the tails of their subjects after "wechat.<appid>.": text messages,
// subscribe and unsubscribe, and the two scan-code events. Event names are
// lower case in subjects (see Event.Subject).
var workerKinds = [...]string{
	"msg.text",
	"event.subscribe",
	"event.unsubscribe",
	"event.scancode_push",
	"event.scancode_waitmsg",
}

// WorkerSubjects returns the WECHAT subjects of account appid that the
// workers act on: the filter of their durable consumer. Everything else
// (LOCATION, VIEW, CLICK, images, ...) is stored in WECHAT for other
// consumers but never delivered to the workers, so it costs them nothing and
// does not count in their lag. The result is a new slice on each call.
func WorkerSubjects(appid string) []string {
	out := make([]string, len(workerKinds))
	for i, k := range workerKinds {
		out[i] = "wechat." + token(appid) + "." + k
	}
	return out
}

// ConsumerConfig configures a durable pull consumer on WECHAT.
type ConsumerConfig struct {
	// Durable is the consumer's name; default DefaultDurable.
	Durable string
	// Subjects are the WECHAT subjects delivered to the consumer; default
	// WorkerSubjects of the bus's AppID.
	Subjects []string
	// MaxDeliver is how many attempts an event gets before it is
	// dead-lettered; default 12.
	MaxDeliver int
	// AckWait is how long a delivered, unacknowledged event waits before
	// redelivery (e.g. after a crash); default 30 s.
	AckWait time.Duration
	// BatchSize bounds one batch; default 256.
	BatchSize int
	// Backoff is the delay before attempt n+1 after n failed attempts;
	// default 500ms doubling up to 30s, so a 10 s WeChat outage uses about
	// five attempts.
	Backoff func(attempt int) time.Duration
	Now     func() time.Time
	// IdleRelease, when positive, hands the process's free memory back to
	// the operating system once the consumer has had nothing to deliver for
	// that long after a delivery: once per busy period, never while events
	// flow. After a burst the heap holds what the burst needed until the
	// next garbage collections (the embedded NATS server keeps 8 MB block
	// buffers in sync.Pools, which only two collections empty), and the Go
	// runtime returns freed pages to the system only gradually. 0 never
	// does.
	IdleRelease time.Duration
	// Release does the release; default ReleaseMemory. Tests replace it.
	Release func()
}

// ReleaseMemory runs two garbage collections (the first moves sync.Pool
// contents to their victim caches, the second frees them) and returns the
// freed memory to the operating system. It stops the world briefly: call
// it when the process is idle.
func ReleaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// DefaultBackoff doubles from 500 ms up to 30 s.
func DefaultBackoff(attempt int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Consumer is a running durable consumer.
type Consumer struct {
	cc      jetstream.ConsumeContext
	done    chan struct{}
	running atomic.Bool
	name    string
	cons    jetstream.Consumer
}

// Consume creates or updates the durable consumer and runs h on batches
// of events until ctx ends or Stop is called. An existing consumer of the
// same name is updated in place to cfg.Subjects (a consumer made by an
// earlier version without that filter keeps its position and acks; events
// outside the filter that it had not yet delivered are skipped). The one switch in settle
// maps outcomes to JetStream: nil → Ack; Permanent or too many attempts →
// WECHAT_DLQ then Term; anything else → NakWithDelay.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h BatchHandler) (*Consumer, error) {
	return b.ConsumeStaged(ctx, cfg, func(ctx context.Context, evs []Event) func() []error {
		errs := h(ctx, evs)
		return func() []error { return errs }
	})
}

// ConsumeStaged is Consume with a StagedHandler: a batch is settled (acked,
// retried or dead-lettered) once its finish returns, while the next batch
// runs its first stage. At most two batches are in hand at once, so two
// finishes may run at the same time; a third batch's first stage waits for
// one of them. A panic in a stage (on the goroutine that runs it) fails
// every event of the batch.
func (b *Bus) ConsumeStaged(ctx context.Context, cfg ConsumerConfig, h StagedHandler) (*Consumer, error) {
	if cfg.Durable == "" {
		cfg.Durable = DefaultDurable
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 12
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Release == nil {
		cfg.Release = ReleaseMemory
	}
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = WorkerSubjects(b.opts.AppID)
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1, // enforced in settle, so that nothing is dropped unrecorded
		FilterSubjects: cfg.Subjects,
		MaxAckPending:  4 * cfg.BatchSize,
		Replicas:       b.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("events: create consumer %s: %w", cfg.Durable, err)
	}
	in := make(chan jetstream.Msg, 2*cfg.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) { in <- m },
		jetstream.PullMaxMessages(2*cfg.BatchSize),
		// A pull that finds no consumer leader (a replicated consumer just
		// created, or its leader's node gone) is re-sent only when two
		// heartbeats (expiry/2 each) are missed: with the default 30 s
		// expiry the workers stood still for 30 s; 5 s bounds that.
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.log.Debug("consume", "consumer", cfg.Durable, "err", err)
		}))
	if err != nil {
		return nil, fmt.Errorf("events: consume %s: %w", cfg.Durable, err)
	}
	c := &Consumer{cc: cc, done: make(chan struct{}), name: cfg.Durable, cons: cons}
	c.running.Store(true)
	d := &deliverer{bus: b, cfg: cfg, h: h, first: map[string]time.Time{}}
	dctx := context.WithoutCancel(ctx)
	go func() {
		defer close(c.done)
		defer c.running.Store(false)
		// slots holds the batches in hand (in their first stage or
		// finishing).
		slots := make(chan struct{}, 2)
		var finishing sync.WaitGroup
		defer finishing.Wait()
		handle := func(batch []jetstream.Msg) {
			slots <- struct{}{}
			finish := d.start(dctx, batch)
			finishing.Go(func() {
				defer func() { <-slots }()
				finish()
			})
		}
		// idle fires IdleRelease after the last delivery; nil when off or
		// already released.
		var idle <-chan time.Time
		var idleTimer *time.Timer
		if cfg.IdleRelease > 0 {
			idleTimer = time.NewTimer(cfg.IdleRelease)
			idleTimer.Stop()
			defer idleTimer.Stop()
		}
		for {
			select {
			case <-idle:
				idle = nil
				cfg.Release()
			case <-ctx.Done():
				cc.Stop()
				return
			case <-cc.Closed():
				// Deliver what was already buffered, then stop.
				for {
					select {
					case m := <-in:
						handle([]jetstream.Msg{m})
					default:
						return
					}
				}
			case m := <-in:
				// A new slice each time: the previous batch may still be
				// finishing.
				batch := append(make([]jetstream.Msg, 0, min(len(in)+1, cfg.BatchSize)), m)
			fill:
				for len(batch) < cfg.BatchSize {
					select {
					case m := <-in:
						batch = append(batch, m)
					default:
						break fill
					}
				}
				handle(batch)
				if idleTimer != nil {
					idleTimer.Reset(cfg.IdleRelease)
					idle = idleTimer.C
				}
			}
		}
	}()
	return c, nil
}

// Running reports whether the consumer loop is running.
func (c *Consumer) Running() bool { return c.running.Load() }

// Stop stops fetching, finishes the batches in hand and returns.
func (c *Consumer) Stop() {
	c.cc.Drain()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// Info returns the consumer's JetStream state (lag, redeliveries).
func (c *Consumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	return c.cons.Info(ctx)
}

type deliverer struct {
	bus *Bus
	cfg ConsumerConfig
	h   StagedHandler

	mu    sync.Mutex
	first map[string]time.Time // event id -> first failure, for the DLQ record
}

// start decodes msgs and runs the handler's first stage on them; the
// returned function runs its second stage and settles every message.
func (d *deliverer) start(ctx context.Context, msgs []jetstream.Msg) (finish func()) {
	evs := make([]Event, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		e, err := DecodeEvent(m.Data())
		if err != nil {
			errs[i] = Permanent(fmt.Errorf("decode event: %w", err))
			continue
		}
		if e.ID == "" {
			errs[i] = Permanent(errors.New("event has no id"))
			continue
		}
		if len(e.ID) > maxEventIDLen {
			// The callback's ids are at most 65 bytes; a longer one would
			// make reply subjects too long for the server.
			errs[i] = Permanent(fmt.Errorf("event id of %d bytes is over %d", len(e.ID), maxEventIDLen))
			continue
		}
		e.RequestID = m.Headers().Get(RequestIDHeader)
		if to := m.Headers().Get(ReplyToHeader); validReplyTo(to) {
			e.ReplyTo = to
		}
		evs = append(evs, e)
		idx = append(idx, i)
	}
	var second func() []error
	if len(evs) > 0 {
		second = d.firstStage(ctx, evs)
	}
	return func() {
		if second != nil {
			res := secondStage(len(evs), second)
			for j, i := range idx {
				if j < len(res) {
					errs[i] = res[j]
				} else {
					errs[i] = errors.New("batch handler returned too few results")
				}
			}
		}
		for i, m := range msgs {
			d.settle(ctx, m, errs[i])
		}
	}
}

// firstStage runs the handler's first stage; a panic fails every event.
func (d *deliverer) firstStage(ctx context.Context, evs []Event) (finish func() []error) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("handler panic: %v", r)
			finish = func() []error { return repeatErr(len(evs), err) }
		}
	}()
	return d.h(ctx, evs)
}

// secondStage runs a handler's finish; a panic fails every event.
func secondStage(n int, finish func() []error) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = repeatErr(n, fmt.Errorf("handler panic: %v", r))
		}
	}()
	if finish == nil {
		return repeatErr(n, errors.New("batch handler returned no second stage"))
	}
	return finish()
}

func repeatErr(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// maxEventIDLen bounds an event id the workers act on.
const maxEventIDLen = 128

// settle is the one place that maps a handler's outcome to JetStream.
func (d *deliverer) settle(ctx context.Context, m jetstream.Msg, err error) {
	meta, merr := m.Metadata()
	attempts := 1
	if merr == nil {
		attempts = int(meta.NumDelivered)
	}
	id := m.Headers().Get(jetstream.MsgIDHeader)
	reqID := m.Headers().Get(RequestIDHeader)
	metrics := d.bus.opts.Metrics
	if attempts > 1 {
		metrics.redeliveries.Inc()
	}
	switch {
	case err == nil:
		metrics.outcomes.WithLabelValues(outcomeAck).Inc()
		d.forget(id)
		if aerr := m.Ack(); aerr != nil {
			d.bus.log.Warn("ack failed", "event_id", id, "request_id", reqID, "err", aerr)
		}
	case IsPermanent(err) || attempts >= d.cfg.MaxDeliver:
		if derr := d.deadLetter(ctx, m, meta, attempts, err); derr != nil {
			metrics.outcomes.WithLabelValues(outcomeRetry).Inc()
			d.bus.log.Error("dead-letter failed; will retry", "event_id", id, "request_id", reqID, "err", derr)
			_ = m.NakWithDelay(d.cfg.Backoff(attempts))
			return
		}
		metrics.outcomes.WithLabelValues(outcomeDeadLetter).Inc()
		d.forget(id)
		d.bus.log.Warn("event dead-lettered", "event_id", id, "request_id", reqID, "subject", m.Subject(), "attempts", attempts, "reason", err.Error())
		_ = m.TermWithReason(err.Error())
	default:
		metrics.outcomes.WithLabelValues(outcomeRetry).Inc()
		d.remember(id)
		delay := d.cfg.Backoff(attempts)
		d.bus.log.Info("event failed; will retry", "event_id", id, "request_id", reqID, "attempt", attempts, "retry_in", delay, "err", err.Error())
		_ = m.NakWithDelay(delay)
	}
}

func (d *deliverer) remember(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.first[id]; !ok {
		d.first[id] = d.cfg.Now()
	}
}

func (d *deliverer) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.first, id)
}

func (d *deliverer) deadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, attempts int, reason error) error {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	d.mu.Lock()
	first, ok := d.first[id]
	d.mu.Unlock()
	if !ok {
		first = d.cfg.Now()
	}
	out := &nats.Msg{Subject: DLQPrefix + m.Subject(), Data: m.Data(), Header: nats.Header{}}
	for k, v := range m.Headers() {
		if k != jetstream.MsgIDHeader {
			out.Header[k] = v
		}
	}
	out.Header.Set(HeaderDLQReason, reason.Error())
	out.Header.Set(HeaderDLQAttempts, strconv.Itoa(attempts))
	out.Header.Set(HeaderDLQFirstFailed, first.UTC().Format(time.RFC3339))
	if meta != nil {
		out.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
		// One DLQ record per stream message, even if Term is lost and the
		// event comes back.
		out.Header.Set(jetstream.MsgIDHeader, "dlq-"+strconv.FormatUint(meta.Sequence.Stream, 10)+"-"+strconv.Itoa(attempts))
	}
	ctx, cancel := context.WithTimeout(ctx, d.bus.opts.PublishTimeout)
	defer cancel()
	if _, err := d.bus.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("events: dead-letter %s: %w", id, err)
	}
	return nil
}
