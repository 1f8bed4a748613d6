package events

import (
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// ReplyToHeader names, on a stored event that waits for a passive reply, the
// callback process whose request waits (Bus.ReplyTo). The workers read it
// into Event.ReplyTo and offer the reply on that process's reply subject.
const ReplyToHeader = "Wxscan-Reply-To"

// remoteWaits are this process's requests that wait for a passive reply
// from workers in another process: one subscription on the process's reply
// subjects routes each offer to the request waiting for its event, so that
// a waiting request costs no subscription of its own (a subscribe and an
// unsubscribe through the server's subject index, and across a cluster's
// routes, per scan). Safe for concurrent use.
type remoteWaits struct {
	mu  sync.Mutex
	sub *nats.Subscription
	m   map[string]chan *nats.Msg
}

// ReplyTo is the token that routes a worker's reply offers to this Bus's
// waiting requests; Publish sends it in ReplyToHeader.
func (b *Bus) ReplyTo() string { return b.replyTo }

// replySubject is where a worker offers the reply to event id to the
// callback process to (a ReplyTo token), or, for an event stored without
// one (by an earlier version), where that version's callback waits.
func (b *Bus) replySubject(to, id string) string {
	if to == "" {
		return b.ReplySubject(id)
	}
	return replyPrefix(b.opts.AppID, to) + token(id)
}

// replyPrefix starts the reply subjects of the callback process to:
// wxscan.reply.<appid>.<to>.<event id>.
func replyPrefix(appid, to string) string {
	return "wxscan.reply." + token(appid) + "." + token(to) + "."
}

// awaitRemote registers a request waiting for event id's reply from
// another process, subscribing the process's reply subjects at the first
// call. The channel receives at most one offer; it is nil when another
// request of this process waits for id already. Call endRemote when done.
func (b *Bus) awaitRemote(id string) (chan *nats.Msg, error) {
	w := &b.remote
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		sub, err := b.nc.Subscribe(replyPrefix(b.opts.AppID, b.replyTo)+"*", b.routeReply)
		if err != nil {
			return nil, fmt.Errorf("events: subscribe replies: %w", err)
		}
		w.sub, w.m = sub, map[string]chan *nats.Msg{}
	}
	key := token(id) // as the subject spells it
	if _, ok := w.m[key]; ok {
		return nil, nil
	}
	ch := make(chan *nats.Msg, 1)
	w.m[key] = ch
	return ch, nil
}

// endRemote ends the wait that awaitRemote registered for id; an offer
// that came meanwhile and was not read is told "gone", so that its worker
// sends the reply itself at once.
func (b *Bus) endRemote(id string, ch chan *nats.Msg) {
	w := &b.remote
	key := token(id)
	w.mu.Lock()
	if w.m[key] == ch {
		delete(w.m, key)
	}
	var late *nats.Msg
	select {
	case late = <-ch:
	default:
	}
	w.mu.Unlock()
	if late != nil {
		_ = late.Respond([]byte("gone"))
	}
}

// routeReply hands an offer to the request waiting for its event, or tells
// the worker "gone" when none does (or one offer is in hand already).
func (b *Bus) routeReply(m *nats.Msg) {
	key := strings.TrimPrefix(m.Subject, replyPrefix(b.opts.AppID, b.replyTo))
	w := &b.remote
	w.mu.Lock()
	sent := false
	if ch := w.m[key]; ch != nil {
		select {
		case ch <- m:
			sent = true
		default:
		}
	}
	w.mu.Unlock()
	if !sent {
		_ = m.Respond([]byte("gone"))
	}
}
