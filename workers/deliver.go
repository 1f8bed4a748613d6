package workers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// planReplies is called in a batch's first stage, in delivery order, with
// the batch's replies; follow[i] is the delivery, still in hand or not yet
// removed from the outbox, of an earlier copy of event i that the batch's
// transaction found (see deliveries.follow). It takes each person's turn for
// the batch's replies and returns send, which hands each reply to exactly
// one path: the callback still holding WeChat's request (passive reply) or
// message/custom/send. Replies to one person are tried in event order,
// within the batch and after that person's replies of earlier batches were
// tried; different people's go out concurrently. After a transient failure,
// that person's later replies in the batch are not tried: they are retried
// with it, so the order holds and a hanging WeChat costs one timeout per
// person, not one per reply. A reply whose earlier copy was delivered is not
// sent again. Delivered replies are removed from the outbox in the next
// batch's transaction (or within a second when no batch comes); a transient
// failure leaves the reply there and the event is retried; a permanent one
// (e.g. 45015) dead-letters the event. send sets errs of the events whose
// replies were not delivered.
func (s *Service) planReplies(evs []events.Event, replies []*events.Reply, follow []*delivery, errs []error) (send func(context.Context)) {
	type lane struct {
		idx   []int
		after <-chan struct{}
		done  func()
	}
	var lanes []*lane
	byUser := map[string]*lane{}
	mine := make([]*delivery, len(replies))
	for i, r := range replies {
		if r == nil {
			continue
		}
		l := byUser[r.ToUser]
		if l == nil {
			l = &lane{}
			l.after, l.done = s.lanes.join(r.ToUser)
			byUser[r.ToUser] = l
			lanes = append(lanes, l)
		}
		l.idx = append(l.idx, i)
		mine[i] = s.outbox.begin(evs[i].ID)
	}
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, l := range lanes {
			wg.Go(func() {
				defer l.done()
				if l.after != nil {
					<-l.after
				}
				var held error // set once a reply to user failed: later ones wait for it
				for _, i := range l.idx {
					e := evs[i]
					if f := follow[i]; f != nil && f.wasDelivered() {
						// The same event came back while an earlier batch
						// delivered its reply: once is enough.
						s.outbox.end(mine[i], true)
						continue
					}
					if held != nil {
						errs[i] = fmt.Errorf("workers: reply to %s held back: %w", e.ID, held)
						s.outbox.end(mine[i], false)
						continue
					}
					path, err := s.sendReply(ctx, *replies[i])
					if err != nil {
						if wechatapi.Permanent(err) {
							err = events.Permanent(err)
						} else {
							held = fmt.Errorf("an earlier reply to the same person was not delivered: %w", err)
						}
						errs[i] = fmt.Errorf("workers: reply to %s: %w", e.ID, err)
						s.outbox.end(mine[i], false)
						continue
					}
					s.metrics.replies.WithLabelValues(path).Inc()
					s.log.Debug("reply delivered", "event_id", e.ID, "path", path, "request_id", e.RequestID)
					s.outbox.end(mine[i], true)
				}
			})
		}
		wg.Wait()
	}
}

// sendReply offers r to a waiting callback, else sends it with custom send
// (at most ReplyConcurrency at once).
func (s *Service) sendReply(ctx context.Context, r events.Reply) (string, error) {
	taken, err := s.bus.OfferReply(ctx, r)
	if err != nil {
		s.log.Warn("offer passive reply", "event_id", r.EventID, "err", err)
	}
	if taken {
		return pathPassive, nil
	}
	select {
	case s.sendSlots <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("workers: send reply %s: %w", r.EventID, ctx.Err())
	}
	defer func() { <-s.sendSlots }()
	if err := s.wx.SendText(ctx, r.ToUser, r.Content); err != nil {
		return "", err
	}
	return pathCustomSend, nil
}

// replyLanes orders each person's replies across batches: a batch joins a
// person's lane in its first stage (in delivery order) and delivers to that
// person once the batch before it has. Safe for concurrent use.
type replyLanes struct {
	mu   sync.Mutex
	tail map[string]chan struct{} // the last batch's turn per person, until it is done
}

// join takes the next turn in user's lane: after is closed when the turn
// before it is done (nil when there is none), and done ends this turn.
func (l *replyLanes) join(user string) (after <-chan struct{}, done func()) {
	mine := make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tail == nil {
		l.tail = map[string]chan struct{}{}
	}
	if prev, ok := l.tail[user]; ok {
		after = prev
	}
	l.tail[user] = mine
	return after, func() {
		close(mine)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.tail[user] == mine {
			delete(l.tail, user)
		}
	}
}

// outboxCleanupDelay is how long delivered replies may wait for the next
// batch's transaction before they are removed from the outbox on their own.
const outboxCleanupDelay = time.Second

// delivery is one batch's delivery of one event's reply.
type delivery struct {
	id        string
	done      chan struct{} // closed once tried
	delivered bool          // set before done is closed
}

// wasDelivered waits until d was tried and reports whether it was delivered.
func (d *delivery) wasDelivered() bool {
	<-d.done
	return d.delivered
}

// deliveries keeps the replies being delivered, and the delivered ones until
// they are removed from the outbox: in the next batch's transaction rather
// than in a commit of their own. Their events are acked after delivery, so
// JetStream does not bring them back; an event that does come back while
// its reply is still in hand (it outlasted AckWait while waiting in the
// consumer's buffer, or its ack was lost) finds that delivery through
// follow, inside its batch's transaction, and does not send the reply
// again. Safe for concurrent use.
type deliveries struct {
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	latest  map[string]*delivery // by event id: in hand, or delivered and still in the outbox
	removed []string             // delivered, to remove from the outbox
	timer   *time.Timer
	closed  bool
}

// begin registers a delivery of id's reply.
func (o *deliveries) begin(id string) *delivery {
	d := &delivery{id: id, done: make(chan struct{})}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.latest == nil {
		o.latest = map[string]*delivery{}
	}
	o.latest[id] = d
	return d
}

// end records how d went. A delivered reply is removed from the outbox
// soon; an undelivered one stays there for the event's retry.
func (o *deliveries) end(d *delivery, delivered bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d.delivered = delivered
	close(d.done)
	if !delivered {
		if o.latest[d.id] == d {
			delete(o.latest, d.id)
		}
		return
	}
	o.removed = append(o.removed, d.id)
	if o.closed {
		return
	}
	if o.timer == nil {
		o.timer = time.AfterFunc(outboxCleanupDelay, o.flush)
	} else {
		o.timer.Reset(outboxCleanupDelay)
	}
}

// follow returns the latest delivery of id's reply that is in hand or not
// yet removed from the outbox, or nil. Call it inside the transaction that
// found id's reply in the outbox: the transactions that remove delivered
// replies (removeIn) cannot run meanwhile.
func (o *deliveries) follow(id string) *delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.latest[id]
}

// removeIn removes the delivered replies from the outbox inside tx, and
// returns their ids for settle.
func (o *deliveries) removeIn(tx *store.Tx) ([]string, error) {
	o.mu.Lock()
	ids := o.removed
	o.removed = nil
	o.mu.Unlock()
	if err := tx.DeleteOutbox(ids...); err != nil {
		o.settle(ids, false)
		return nil, err
	}
	return ids, nil
}

// settle is called once the transaction that removed ids ended: committed,
// their deliveries are forgotten; rolled back, they are removed next time.
func (o *deliveries) settle(ids []string, committed bool) {
	if len(ids) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !committed {
		o.removed = append(o.removed, ids...)
		return
	}
	for _, id := range ids {
		if d := o.latest[id]; d != nil && d.delivered {
			delete(o.latest, id)
		}
	}
}

// close stops the timer and flushes: at Stop, once no batch is in hand.
func (o *deliveries) close() {
	o.mu.Lock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
	}
	o.mu.Unlock()
	o.flush()
}

// flush removes the delivered replies from the outbox in a commit of its
// own: when no batch came to do it, and at Stop.
func (o *deliveries) flush() {
	o.mu.Lock()
	none := len(o.removed) == 0
	o.mu.Unlock()
	if none {
		return
	}
	var ids []string
	err := o.db.Update(func(tx *store.Tx) error {
		var err error
		ids, err = o.removeIn(tx)
		return err
	})
	o.settle(ids, err == nil)
	if err != nil {
		o.log.Warn("outbox cleanup failed; will retry with the next batch", "err", err)
	}
}
