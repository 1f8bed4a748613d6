package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names. Their subjects and payloads are a public interface.
const (
	StreamName    = "WECHAT"
	DLQStreamName = "WECHAT_DLQ"
	// DLQPrefix is prepended to an event's subject in the WECHAT_DLQ stream.
	DLQPrefix = "dlq."
)

// Options configures a Bus.
type Options struct {
	// URL is an external NATS URL list; empty means connect in-process to
	// Server.
	URL    string
	Server *Server
	// CredsFile is a NATS credentials file for an external NATS.
	CredsFile string
	AppID     string
	// Name names the connection in NATS monitoring.
	Name string
	// Replicas of the streams on a cluster; default 1.
	Replicas int
	// MaxAge and MaxBytes bound the WECHAT stream; defaults 7 days, 4 GiB.
	MaxAge   time.Duration
	MaxBytes int64
	// DuplicateWindow is how long the WECHAT stream remembers message ids;
	// default DefaultDuplicateWindow. Callers pass DuplicateWindowFor(max
	// skew). EnsureStreams caps it at MaxAge, with a warning.
	DuplicateWindow time.Duration
	// InboxPrefix, when set, starts the connection's reply subjects (its
	// requests' and JetStream's), so that a NATS user can be allowed to
	// read only its own: "_INBOX_callback" for a callback-only process,
	// "_INBOX_workers" for a workers-only one (events/natsconf).
	InboxPrefix string
	// PublishTimeout bounds one publish (store + ack); default 1.5 s, so that
	// the callback answers 503 well inside 2 s when NATS cannot take it.
	PublishTimeout time.Duration
	Logger         *slog.Logger
	// Metrics receives the bus's measurements; nil keeps them unregistered.
	Metrics *Metrics
}

// DefaultDuplicateWindow is the WECHAT stream's duplicate window for the
// default WXSCAN_MAX_SKEW of 300 s: DuplicateWindowFor(300 * time.Second).
const DefaultDuplicateWindow = 11 * time.Minute

// DuplicateWindowFor is the duplicate window that keeps any request accepted
// inside a timestamp window of ±maxSkew from being stored twice: a request
// and its replay can be up to 2 × maxSkew apart, plus a minute of margin
// (SPEC §4).
func DuplicateWindowFor(maxSkew time.Duration) time.Duration { return 2*maxSkew + time.Minute }

// Bus is wxscan's connection to NATS JetStream. It is safe for concurrent
// use.
type Bus struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts Options
	log  *slog.Logger
	// denied is the last permissions violation NATS reported.
	denied *atomic.Pointer[string]
	// local are this process's requests waiting for a passive reply, for
	// workers in this process; remote the same requests, for workers
	// elsewhere, which reach them through replyTo.
	local   waiters
	remote  remoteWaits
	replyTo string
	// ownPrefix starts this process's reply subjects:
	// replyPrefix(AppID, replyTo), made once.
	ownPrefix string
}

// Connect connects to NATS (retrying in the background if it is not up yet)
// and returns a Bus. Call EnsureStreams before publishing or consuming.
func Connect(ctx context.Context, opts Options) (*Bus, error) {
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 7 * 24 * time.Hour
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 4 << 30
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = DefaultDuplicateWindow
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 1500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger
	denied := &atomic.Pointer[string]{}
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		// A permissions violation (a NATS user without the right to a
		// subject) is reported here, not to the call: the call times out.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				msg := err.Error()
				denied.Store(&msg)
			}
			log.Warn("nats error", "err", err)
		}),
	}
	if opts.InboxPrefix != "" {
		nopts = append(nopts, nats.CustomInboxPrefix(opts.InboxPrefix))
	}
	url := opts.URL
	switch {
	case url != "":
		if opts.CredsFile != "" {
			nopts = append(nopts, nats.UserCredentials(opts.CredsFile))
		}
	case opts.Server != nil:
		nopts = append(nopts, nats.InProcessServer(opts.Server.Server))
		if opts.Server.token != "" {
			nopts = append(nopts, nats.Token(opts.Server.token))
		}
	default:
		return nil, errors.New("events: connect: neither a NATS URL nor an embedded server")
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("events: connect to nats: %w", err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(opts.PublishTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("events: jetstream: %w", err)
	}
	replyTo := RandomHex(8)
	return &Bus{nc: nc, js: js, opts: opts, log: log, denied: denied,
		replyTo: replyTo, ownPrefix: replyPrefix(opts.AppID, replyTo)}, nil
}

// JetStream exposes the JetStream context for operator tools and tests.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn exposes the NATS connection (request/reply between callback and
// workers).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// AppID is the account the bus publishes for.
func (b *Bus) AppID() string { return b.opts.AppID }

// EnsureStreams creates the WECHAT and WECHAT_DLQ streams, or updates
// their settings when they differ from this process's. It is idempotent
// and safe to call from every process at start. A stream whose settings
// already match is only read, so a NATS user that may read the streams'
// info but not change them (the callback's, events/natsconf) gets nil once
// the workers have set them. When the duplicate window is capped at the
// stream's max age it logs a warning.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	dup := b.opts.DuplicateWindow
	if dup > b.opts.MaxAge {
		b.log.Warn("stream duplicate window capped at the stream's max age: a request replayed inside the timestamp window after that could be stored twice",
			"stream", StreamName, "wanted", dup.String(), "max_age", b.opts.MaxAge.String())
		dup = b.opts.MaxAge
	}
	cfgs := []jetstream.StreamConfig{{
		Name:        StreamName,
		Description: "WeChat callbacks (wxscan events v1)",
		Subjects:    []string{"wechat.*.msg.*", "wechat.*.event.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      b.opts.MaxAge,
		MaxBytes:    b.opts.MaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  dup,
		Replicas:    b.opts.Replicas,
	}, {
		Name:        DLQStreamName,
		Description: "wxscan events that could not be processed, with the reason",
		Subjects:    []string{DLQPrefix + "wechat.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		Discard:     jetstream.DiscardOld,
		Replicas:    b.opts.Replicas,
	}}
	for _, cfg := range cfgs {
		st, err := b.js.Stream(ctx, cfg.Name)
		exists := err == nil
		if exists && !needsUpdate(st.CachedInfo().Config, cfg) {
			continue
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("events: stream %s info: %w", cfg.Name, err)
		}
		if denied, err := b.createOrUpdate(ctx, cfg); err != nil {
			if exists && denied {
				// A NATS user that may not change the stream (the
				// callback's): the settings are the workers' to set.
				b.log.Warn("stream settings differ from this process's, and its NATS user may not update them: kept as they are",
					"stream", cfg.Name, "duplicate_window", st.CachedInfo().Config.Duplicates.String())
				continue
			}
			return fmt.Errorf("events: create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// createOrUpdate creates or updates a stream. NATS reports a permissions
// violation asynchronously and the request would wait for its deadline, so
// it stops as soon as one names this stream's update, and says so.
func (b *Bus) createOrUpdate(ctx context.Context, cfg jetstream.StreamConfig) (denied bool, err error) {
	subject := `"$JS.API.STREAM.UPDATE.` + cfg.Name + `"`
	b.denied.Store(nil)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.js.CreateOrUpdateStream(ctx, cfg)
		done <- err
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return b.wasDenied(subject), err
		case <-tick.C:
			if b.wasDenied(subject) {
				cancel()
				return true, fmt.Errorf("events: update stream %s: %w", cfg.Name, nats.ErrPermissionViolation)
			}
		}
	}
}

// wasDenied reports whether the last permissions violation NATS reported
// names subject (quoted, as NATS quotes it).
func (b *Bus) wasDenied(subject string) bool {
	p := b.denied.Load()
	return p != nil && strings.Contains(*p, subject)
}

// needsUpdate reports whether the settings EnsureStreams chooses in want
// differ from the stream's, have. Settings want leaves zero are not
// compared (the server's defaults stand).
func needsUpdate(have, want jetstream.StreamConfig) bool {
	if !slices.Equal(have.Subjects, want.Subjects) || have.Description != want.Description ||
		have.Retention != want.Retention || have.Storage != want.Storage || have.Discard != want.Discard ||
		have.MaxAge != want.MaxAge || have.Replicas != want.Replicas {
		return true
	}
	if want.MaxBytes != 0 && have.MaxBytes != want.MaxBytes {
		return true
	}
	return want.Duplicates != 0 && have.Duplicates != want.Duplicates
}

// Ready reports whether NATS is connected and the streams exist. It
// returns at once when the connection is down.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("events: nats not connected (%s)", b.nc.Status())
	}
	for _, name := range []string{StreamName, DLQStreamName} {
		if _, err := b.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("events: stream %s: %w", name, err)
		}
	}
	return nil
}

// legacyReplySubject is where a callback from before ReplyToHeader waits
// for the passive reply to event id; an event stored without the header is
// offered there.
func (b *Bus) legacyReplySubject(id string) string {
	return "wxscan.reply." + token(b.opts.AppID) + "." + token(id)
}

// Publish stores e in the WECHAT stream with e.ID as the message id, so a
// retried callback produces one message. It returns once JetStream has
// acknowledged the event, or an error (then nothing may be assumed stored,
// and the caller answers 503 so that WeChat retries). When wait > 0 and the
// event is new, it then waits for the worker's reply until wait has passed
// since the call, and returns it, or nil when none came in time; the worker
// then sends it itself.
func (b *Bus) Publish(ctx context.Context, e Event, wait time.Duration) (*Reply, error) {
	start := time.Now()
	data, err := e.AppendJSON(make([]byte, 0, e.jsonSizeHint()))
	if err != nil {
		return nil, err
	}
	// All three names are in canonical form already: no Header.Set.
	msg := &nats.Msg{Subject: e.Subject(), Data: data, Header: nats.Header{jetstream.MsgIDHeader: {e.ID}}}
	if e.RequestID != "" {
		msg.Header[RequestIDHeader] = []string{e.RequestID}
	}
	var replies chan offer // an offer from workers in another process
	if wait > 0 {
		// Registered before the event is stored: workers elsewhere may
		// offer as soon as it is.
		if replies, err = b.awaitRemote(e.ID); err != nil {
			return nil, err
		}
		defer b.endRemote(e.ID, replies)
		msg.Header[ReplyToHeader] = []string{b.replyTo}
	}
	// PublishTimeout bounds the wait for the acknowledgement: the
	// connection's async publish timeout (set in Connect) fails the future.
	ack, err := b.publish(ctx, msg)
	b.opts.Metrics.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		b.opts.Metrics.pubError.Inc()
		return nil, fmt.Errorf("events: publish %s: %w", e.ID, err)
	}
	if ack.Duplicate {
		b.opts.Metrics.duplicate.Inc()
		return nil, nil
	}
	b.opts.Metrics.stored.Inc()
	if wait <= 0 {
		return nil, nil
	}
	// The wait counts from the start, so a slow publish shortens it.
	timer := time.NewTimer(wait - time.Since(start))
	defer timer.Stop()
	// An offer from workers in this process comes through w (nil when
	// another request of this process waits for e), one from elsewhere
	// through replies.
	var ready <-chan struct{}
	w := b.local.add(e.ID)
	if w != nil {
		defer b.local.remove(e.ID, w)
		ready = w.ready
	}
	select {
	case <-ready:
		return w.end(), nil
	case o := <-replies:
		m := o.m
		var r Reply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			b.log.Warn("bad reply payload", "event_id", e.ID, "err", err)
			_ = m.Respond([]byte("gone"))
			return w.end(), nil
		}
		if r.EventID != e.ID || time.Since(o.at) > offerFresh {
			// Another event whose id reads the same in a subject, or an
			// offer read so late that its worker may have given up on it.
			_ = m.Respond([]byte("gone"))
			return w.end(), nil
		}
		if w != nil && !w.take(r) {
			// Handed over in this process meanwhile: that one counts.
			_ = m.Respond([]byte("gone"))
			return w.end(), nil
		}
		if err := m.Respond([]byte("ok")); err != nil {
			return nil, nil // the worker will send it itself
		}
		return &r, nil
	case <-timer.C:
		return w.end(), nil
	case <-ctx.Done():
		return w.end(), nil
	}
}

func (b *Bus) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	f, err := b.js.PublishMsgAsync(msg)
	if err != nil {
		return nil, err
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// OfferReply offers r to a callback request still waiting for it. It
// reports true when the callback took it (it then goes back to WeChat as the
// passive reply) and false when no callback is waiting, in which case the
// caller must send it through message/custom/send. Together with Publish,
// this hands every reply to exactly one of the two paths.
func (b *Bus) OfferReply(ctx context.Context, r Reply) (bool, error) {
	if b.local.offer(r) {
		return true, nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("events: encode reply %s: %w", r.EventID, err)
	}
	if !validReplyTo(r.ReplyTo) {
		r.ReplyTo = "" // not one of ours: the subject an earlier callback waits on
	}
	ctx, cancel := context.WithTimeout(ctx, offerTimeout)
	defer cancel()
	m, err := b.nc.RequestWithContext(ctx, b.replySubject(r.ReplyTo, r.EventID), data)
	switch {
	case err == nil:
		return string(m.Data) == "ok", nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return false, nil
	default:
		return false, fmt.Errorf("events: offer reply %s: %w", r.EventID, err)
	}
}

// Close drains the connection: pending publishes and acks are flushed.
func (b *Bus) Close() error {
	if b.nc.IsClosed() {
		return nil
	}
	done := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return fmt.Errorf("events: drain nats: %w", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.nc.Close()
	}
	return nil
}

// RequestIDHeader carries the callback's request id (Event.RequestID) to
// the workers' logs.
const RequestIDHeader = "Wxscan-Request-Id"
