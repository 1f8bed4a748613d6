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

// planReplies is called in a batch's first stage, in delivery order. It
// takes each person's turn for the batch's replies and returns send, which
// hands each reply to exactly one path: the callback still holding WeChat's
// request (passive reply) or message/custom/send. Replies to one person go
// out in event order, within the batch and after that person's replies of
// earlier batches; different people's go out concurrently. After a transient
// failure, that person's later replies in the batch are not tried: they are
// retried with it, so the order holds and a hanging WeChat costs one timeout
// per person, not one per reply. Delivered replies are removed from the
// outbox in the next batch's transaction (or within a second when no batch
// comes); a transient failure leaves the reply there and the event is
// retried; a permanent one (e.g. 45015) dead-letters the event. send sets
// errs of the events whose replies were not delivered.
func (s *Service) planReplies(evs []events.Event, replies []*events.Reply, errs []error) (send func(context.Context)) {
	type lane struct {
		user  string
		idx   []int
		after <-chan struct{}
		done  func()
	}
	var lanes []*lane
	byUser := map[string]*lane{}
	for i, r := range replies {
		if r == nil {
			continue
		}
		l := byUser[r.ToUser]
		if l == nil {
			l = &lane{user: r.ToUser}
			l.after, l.done = s.lanes.join(r.ToUser)
			byUser[r.ToUser] = l
			lanes = append(lanes, l)
		}
		l.idx = append(l.idx, i)
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
					if held != nil {
						errs[i] = fmt.Errorf("workers: reply to %s held back: %w", e.ID, held)
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
						continue
					}
					s.metrics.replies.WithLabelValues(path).Inc()
					s.log.Debug("reply delivered", "event_id", e.ID, "path", path, "request_id", e.RequestID)
					s.outbox.delivered(e.ID)
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

// outboxCleanup collects the ids of delivered replies, to be removed from
// the outbox in the next batch's transaction rather than in a commit of
// their own. Their events are acked after delivery, so JetStream does not
// bring them back: until removed, their entries are only stale. Safe for
// concurrent use.
type outboxCleanup struct {
	db  *store.DB
	log *slog.Logger

	mu    sync.Mutex
	ids   []string
	timer *time.Timer
}

// delivered notes that id's reply was delivered.
func (o *outboxCleanup) delivered(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids = append(o.ids, id)
	if o.timer == nil {
		o.timer = time.AfterFunc(outboxCleanupDelay, o.flush)
	} else {
		o.timer.Reset(outboxCleanupDelay)
	}
}

// take returns the delivered ids and forgets them: the caller removes them,
// or hands them back with putBack.
func (o *outboxCleanup) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := o.ids
	o.ids = nil
	return ids
}

func (o *outboxCleanup) putBack(ids []string) {
	if len(ids) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids = append(o.ids, ids...)
}

// close stops the timer and flushes: at Stop, once no batch is in hand.
func (o *outboxCleanup) close() {
	o.mu.Lock()
	if o.timer != nil {
		o.timer.Stop()
	}
	o.mu.Unlock()
	o.flush()
}

// flush removes the delivered replies from the outbox in a commit of its
// own: when no batch came to do it, and at Stop.
func (o *outboxCleanup) flush() {
	ids := o.take()
	if len(ids) == 0 {
		return
	}
	if err := o.db.DeleteOutbox(ids...); err != nil {
		o.putBack(ids)
		o.log.Warn("outbox cleanup failed; will retry", "err", err)
	}
}
