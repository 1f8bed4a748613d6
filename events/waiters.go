package events

import "sync"

// waiters are the callback requests of this process that wait for their
// event's passive reply. When the workers run in the same process (wxscan
// serve in its default shape), OfferReply hands a reply to its waiter
// directly, without a round trip through NATS; a waiter also listens on its
// NATS reply subject, so a workers process elsewhere reaches it too. Either
// way a waiter takes at most one reply, and the offer that it takes is the
// only one told so. Safe for concurrent use.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waiter
}

// waiter is one waiting request, registered once its event is stored (an
// offer before that goes over NATS, where the request finds it once it
// waits). Its state moves once from waiting to taken (a reply is in r) or
// to gone (the request stopped waiting).
type waiter struct {
	mu    sync.Mutex
	state int
	r     Reply
	ready chan struct{} // closed when taken
}

const (
	waiting = iota
	taken
	gone
)

// add registers a waiter for event id, or returns nil when one is
// registered already (a second request for the same event then waits on
// NATS alone).
func (ws *waiters) add(id string) *waiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if _, ok := ws.m[id]; ok {
		return nil
	}
	if ws.m == nil {
		ws.m = map[string]*waiter{}
	}
	w := &waiter{ready: make(chan struct{})}
	ws.m[id] = w
	return w
}

func (ws *waiters) remove(id string, w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m[id] == w {
		delete(ws.m, id)
	}
}

// offer hands r to the waiter of r.EventID in this process, and reports
// whether it took it.
func (ws *waiters) offer(r Reply) bool {
	ws.mu.Lock()
	w := ws.m[r.EventID]
	ws.mu.Unlock()
	return w != nil && w.take(r)
}

// take gives r to w if w is waiting.
func (w *waiter) take(r Reply) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != waiting {
		return false
	}
	w.state, w.r = taken, r
	close(w.ready)
	return true
}

// end ends w's wait (w may be nil) and returns the reply it took
// meanwhile, or nil.
func (w *waiter) end() *Reply {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == taken {
		r := w.r
		return &r
	}
	w.state = gone
	return nil
}
