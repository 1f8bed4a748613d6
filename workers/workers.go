// Package workers is wxscan's behaviour: it consumes the WECHAT stream
// (subscribe, unsubscribe, scans, text), binds staff through WeChat's OAuth
// web authorization, records stocktake scans in the store and replies in the
// chat. It holds the AppSecret (through wechatapi) and owns the store.
package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// Config configures a Service. Zero values take the defaults noted.
type Config struct {
	AppID string
	// PublicURL is WXSCAN_PUBLIC_URL: the base of the bind link and the
	// OAuth redirect_uri.
	PublicURL string
	// OAuthBase is WXSCAN_OAUTH_BASE (default https://open.weixin.qq.com).
	OAuthBase string
	// Scope is the OAuth scope: snsapi_base (default) or snsapi_userinfo.
	Scope  string
	DB     *store.DB
	Bus    *events.Bus
	WeChat *wechatapi.Client
	// Consumer tunes the durable consumer (named events.DefaultDurable by
	// default).
	Consumer events.ConsumerConfig
	// ReplyConcurrency bounds the replies sent with message/custom/send at
	// once (default 32); offering a reply to a waiting callback is not
	// bounded.
	ReplyConcurrency int
	// StateTTL (10 min) bounds an OAuth state, and the memory of its use
	// with its code; SessionTTL (30 min) a page session.
	StateTTL, SessionTTL time.Duration
	// ProcessedRetention is how long processed event ids are kept for
	// idempotency: the WECHAT stream's MaxAge (default 7 days, the events
	// package's default). Shorter than the stream's MaxAge would let a
	// redelivered event be processed twice.
	ProcessedRetention time.Duration
	// PruneInterval is how often expired OAuth uses, sessions and bind
	// counters, and processed event ids older than ProcessedRetention, are
	// removed (default 1 hour; once at Start too).
	PruneInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// Metrics receives the workers' measurements; nil keeps them
	// unregistered.
	Metrics *Metrics
	// OnScans, if set, is called after each committed change that may have
	// recorded, changed or cancelled scans, with the stocktakes concerned
	// (none: any); the console's live pages hang on it. It must not block.
	OnScans func(stocktakeIDs ...string)
	// Location is the time zone of times shown in replies (default
	// Asia/Shanghai; WXSCAN_TIMEZONE).
	Location *time.Location
}

// Service runs the workers. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	db      *store.DB
	bus     *events.Bus
	wx      *wechatapi.Client
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics

	states    stateSigner // set by Start, before the operations are served
	codeLocks keyedMutex
	lanes     replyLanes    // each person's replies, in order across batches
	sendSlots chan struct{} // custom sends in flight (ReplyConcurrency)
	outbox    deliveries    // replies in hand, and delivered ones still in the outbox

	mu        sync.Mutex
	consumer  *events.Consumer
	subs      []interface{ Drain() error }
	stopPrune func() // stops the pruning goroutine and waits for it
}

// New checks cfg and returns a Service; Start runs it.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.WeChat == nil {
		return nil, errors.New("workers: DB, Bus and WeChat are required")
	}
	if cfg.PublicURL == "" {
		return nil, errors.New("workers: WXSCAN_PUBLIC_URL is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.OAuthBase == "" {
		cfg.OAuthBase = wechatapi.DefaultOAuthBase
	}
	if cfg.Scope == "" {
		cfg.Scope = wechatapi.ScopeBase
	}
	if cfg.ReplyConcurrency <= 0 {
		cfg.ReplyConcurrency = 32
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 30 * time.Minute
	}
	if cfg.ProcessedRetention <= 0 {
		cfg.ProcessedRetention = DefaultProcessedRetention
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = DefaultPruneInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Consumer.Durable == "" {
		cfg.Consumer.Durable = events.DefaultDurable
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("workers: time zone Asia/Shanghai: %w", err)
		}
		cfg.Location = loc
	}
	s := &Service{cfg: cfg, db: cfg.DB, bus: cfg.Bus, wx: cfg.WeChat, log: cfg.Logger, now: cfg.Now, metrics: cfg.Metrics,
		sendSlots: make(chan struct{}, cfg.ReplyConcurrency)}
	s.outbox.db, s.outbox.log = cfg.DB, cfg.Logger
	return s, nil
}

// Start prunes expired records once, then runs the consumer, answers the
// staff pages' operations and prunes every PruneInterval until Stop.
func (s *Service) Start(ctx context.Context) error {
	key, err := s.db.Secret(stateSecret, stateSecretLen)
	if err != nil {
		return fmt.Errorf("workers: start: %w", err)
	}
	s.states = stateSigner{key: key}
	s.Prune()
	s.startPruning()
	for op, h := range map[string]events.RPCHandler{
		events.OpBindStart:     rpc(s.bindStart),
		events.OpOAuthCallback: rpc(s.oauthCallback),
		events.OpBindSubmit:    rpc(s.bindSubmit),
		events.OpScanPage:      rpc(s.scanPage),
		events.OpScanSubmit:    rpc(s.scanSubmit),
		events.OpScanRecent:    rpc(s.scanRecent),
		events.OpScanQty:       rpc(s.scanQty),
		events.OpScanUndo:      rpc(s.scanUndo),
	} {
		sub, err := s.bus.Serve(op, h)
		if err != nil {
			s.Stop()
			return err
		}
		s.mu.Lock()
		s.subs = append(s.subs, sub)
		s.mu.Unlock()
	}
	c, err := s.bus.ConsumeStaged(ctx, s.cfg.Consumer, s.RecordBatch)
	if err != nil {
		s.Stop()
		return err
	}
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
	return nil
}

// Durable is the name of the service's durable consumer on WECHAT.
func (s *Service) Durable() string { return s.cfg.Consumer.Durable }

// Ready reports whether the consumer is running.
func (s *Service) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.consumer == nil || !s.consumer.Running() {
		return errors.New("workers: consumer not running")
	}
	return nil
}

// Stop stops answering operations and pruning, finishes the batches in
// hand and removes their delivered replies from the outbox.
func (s *Service) Stop() {
	s.mu.Lock()
	subs, c, stopPrune := s.subs, s.consumer, s.stopPrune
	s.subs, s.consumer, s.stopPrune = nil, nil, nil
	s.mu.Unlock()
	if stopPrune != nil {
		stopPrune()
	}
	for _, sub := range subs {
		_ = sub.Drain()
	}
	if c != nil {
		c.Stop()
	}
	s.outbox.close()
}

// HandleBatch processes one fetched batch of events in one store
// transaction, then delivers their replies: RecordBatch and its finish in
// one call.
func (s *Service) HandleBatch(ctx context.Context, evs []events.Event) []error {
	return s.RecordBatch(ctx, evs)()
}

// RecordBatch is the workers' events.StagedHandler. Its first stage records
// a fetched batch of events in one store transaction, which also removes
// the replies delivered since the last one from the outbox; its finish
// delivers the batch's replies. It may run more than once for an event
// (JetStream redelivers until acked); it is idempotent on the event id: a
// processed event records nothing new, and only its undelivered reply (kept
// in the store's outbox in the same transaction) is sent again. First
// stages must run one at a time, in delivery order: they order each
// person's replies across batches.
func (s *Service) RecordBatch(ctx context.Context, evs []events.Event) (finish func() []error) {
	errs := make([]error, len(evs))
	replies := make([]*events.Reply, len(evs))
	now := s.now()
	var (
		scans []scanOutcome // committed with the batch
		dups  int
	)
	follow := make([]*delivery, len(evs))
	var removed []string // delivered replies this transaction removes from the outbox
	committed := false
	defer func() { s.outbox.settle(removed, committed) }()
	began := time.Now()
	err := s.db.Update(func(tx *store.Tx) error {
		scans, dups = scans[:0], 0
		var err error
		if removed, err = s.outbox.removeIn(tx); err != nil {
			return err
		}
		seen := make(map[string]bool, len(evs))
		for i, e := range evs {
			if seen[e.ID] { // the same event twice in one batch: once is enough
				continue
			}
			seen[e.ID] = true
			done, err := tx.EventProcessed(e.ID, createdAt(e))
			if err != nil {
				return err
			}
			if done {
				dups++
				b, err := tx.Outbox(e.ID)
				if err != nil {
					return err
				}
				if b != nil {
					var r events.Reply
					if err := json.Unmarshal(b, &r); err == nil {
						replies[i] = &r
						follow[i] = s.outbox.follow(e.ID)
					}
				}
				continue
			}
			r, out, err := s.apply(tx, e)
			if err != nil {
				if isStoreFailure(err) {
					return err
				}
				errs[i] = events.Permanent(err)
				continue
			}
			if err := tx.MarkEventProcessed(e.ID, createdAt(e), now); err != nil {
				return err
			}
			if out != nil {
				scans = append(scans, *out)
			}
			if r != nil {
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				if err := tx.PutOutbox(e.ID, b); err != nil {
					return err
				}
				replies[i] = r
			}
		}
		return nil
	})
	committed = err == nil
	s.metrics.batchCommit.Observe(time.Since(began).Seconds())
	s.metrics.batchEvents.Observe(float64(len(evs)))
	if err != nil {
		err = fmt.Errorf("workers: record batch of %d: %w", len(evs), err)
		s.log.Error("batch not recorded; will retry", "err", err)
		for i := range errs {
			errs[i] = err
		}
		return func() []error { return errs }
	}
	for _, out := range scans {
		s.metrics.countScan(out)
	}
	s.metrics.duplicates.Add(float64(dups))
	s.notifyScans()
	send := s.planReplies(evs, replies, follow, errs)
	return func() []error {
		send(ctx)
		return errs
	}
}

// isStoreFailure tells a failing store (retry the whole batch) from an event
// the rules refuse (never valid).
func isStoreFailure(err error) bool {
	return !errors.Is(err, store.ErrInvalid) && !errors.Is(err, errInvalidEvent)
}

var errInvalidEvent = errors.New("invalid event")

// apply runs one new event's rules inside tx and returns its reply, if any,
// and for a scan event what the scan did.
func (s *Service) apply(tx *store.Tx, e events.Event) (*events.Reply, *scanOutcome, error) {
	reply := func(text string) *events.Reply {
		return &events.Reply{EventID: e.ID, ToUser: e.From, FromUser: e.To, Content: text, ReplyTo: e.ReplyTo}
	}
	switch {
	case e.MsgType == "event" && strings.EqualFold(e.Event, "subscribe"):
		b, err := tx.BindingByOpenID(e.From)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return reply(msgWelcome(s.cfg.PublicURL)), nil, nil
		case err != nil:
			return nil, nil, err
		}
		if b.State != store.StateActive {
			if err := tx.SetBindingState(e.From, store.StateActive); err != nil {
				return nil, nil, err
			}
		}
		return reply(msgWelcomeBack(b.Name)), nil, nil
	case e.MsgType == "event" && strings.EqualFold(e.Event, "unsubscribe"):
		err := tx.SetBindingState(e.From, store.StateSuspended)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, nil
	case e.IsScan():
		out, err := s.scan(tx, e.From, e.ScanType, e.ScanResult, scanTime(e), e.ID)
		if err != nil {
			return nil, nil, err
		}
		return reply(out.message), &out, nil
	case e.MsgType == "text":
		// Idempotent on the message's id (MsgId) through Processed, like
		// every event: a redelivered text changes nothing more.
		text, err := s.text(tx, e.From, e.Content, scanTime(e))
		if err != nil {
			return nil, nil, err
		}
		return reply(text), nil, nil
	}
	return nil, nil, nil
}

// createdAt is e's CreateTime, the same in every copy of e, or the zero
// time when it has none.
func createdAt(e events.Event) time.Time {
	if e.CreateTime > 0 {
		return time.Unix(e.CreateTime, 0)
	}
	return time.Time{}
}

func scanTime(e events.Event) time.Time {
	if t := createdAt(e); !t.IsZero() {
		return t.UTC()
	}
	return e.ReceivedAt
}
