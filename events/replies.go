package events

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ReplyToHeader names, on a stored event that waits for a passive reply, the
// callback process whose request waits (Bus.ReplyTo). The workers read it
// into Event.ReplyTo and offer the reply on that process's reply subject.
const ReplyToHeader = "Wxscan-Reply-To"

// offerTimeout is how long OfferReply waits for the callback's answer. An
// offer that has waited in a request's hands longer than offerFresh is not
// taken (it is told "gone"): its worker may have given up on it already and
// be sending the reply itself.
const (
	offerTimeout = 500 * time.Millisecond
	offerFresh   = offerTimeout - 150*time.Millisecond
)

// remoteWaits are this process's requests that wait for a passive reply
// from workers in another process: one subscription on the process's reply
// subjects routes each offer to a request waiting for its event, so that a
// waiting request costs no subscription of its own (a subscribe and an
// unsubscribe through the server's subject index, and across a cluster's
// routes, per scan). Safe for concurrent use.
type remoteWaits struct {
	mu  sync.Mutex
	sub *nats.Subscription
	// m holds, per event id (as its subject spells it), the requests that
	// wait for it: more than one only while a WeChat retry's publish is
	// told it is a duplicate.
	m map[string][]chan offer
}

// offer is a worker's reply offer and when it reached this process.
type offer struct {
	m  *nats.Msg
	at time.Time
}

// ReplyTo is the token that routes a worker's reply offers to this Bus's
// waiting requests; Publish sends it in ReplyToHeader.
func (b *Bus) ReplyTo() string { return b.replyTo }

// validReplyTo reports whether to can be a ReplyTo token (RandomHex(8)):
// a header that is not one is ignored, so that a crafted one cannot make
// an offer's subject long or odd.
func validReplyTo(to string) bool {
	if len(to) != 16 {
		return false
	}
	for i := 0; i < len(to); i++ {
		if c := to[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// replySubject is where a worker offers the reply to event id to the
// callback process to (a ReplyTo token), or, for an event stored without
// one (by an earlier version), where that version's callback waits.
func (b *Bus) replySubject(to, id string) string {
	if to == "" {
		return b.legacyReplySubject(id)
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
// call. The channel receives at most one offer. Call endRemote when done.
func (b *Bus) awaitRemote(id string) (chan offer, error) {
	w := &b.remote
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		sub, err := b.nc.Subscribe(b.ownPrefix+"*", b.routeReply)
		if err != nil {
			return nil, fmt.Errorf("events: subscribe replies: %w", err)
		}
		w.sub, w.m = sub, map[string][]chan offer{}
	}
	key := token(id) // as the subject spells it
	ch := make(chan offer, 1)
	w.m[key] = append(w.m[key], ch)
	return ch, nil
}

// endRemote ends the wait that awaitRemote registered for id; an offer
// that came meanwhile and was not read is told "gone", so that its worker
// sends the reply itself at once.
func (b *Bus) endRemote(id string, ch chan offer) {
	key := token(id)
	w := &b.remote
	w.mu.Lock()
	waiting := w.m[key]
	for i, c := range waiting {
		if c == ch {
			waiting = append(waiting[:i:i], waiting[i+1:]...)
			break
		}
	}
	if len(waiting) == 0 {
		delete(w.m, key)
	} else {
		w.m[key] = waiting
	}
	var late *nats.Msg
	select {
	case o := <-ch:
		late = o.m
	default:
	}
	w.mu.Unlock()
	if late != nil {
		_ = late.Respond([]byte("gone"))
	}
}

// routeReply hands an offer to a request waiting for its event, or tells
// the worker "gone" when none does (or each has an offer in hand already).
func (b *Bus) routeReply(m *nats.Msg) {
	key := strings.TrimPrefix(m.Subject, b.ownPrefix)
	w := &b.remote
	w.mu.Lock()
	sent := false
	for _, ch := range w.m[key] {
		select {
		case ch <- offer{m, time.Now()}:
			sent = true
		default:
		}
		if sent {
			break
		}
	}
	w.mu.Unlock()
	if !sent {
		_ = m.Respond([]byte("gone"))
	}
}
