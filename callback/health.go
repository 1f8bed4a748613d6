package callback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// readyTimeout bounds one readiness check and every /readyz answer.
const readyTimeout = time.Second

// Health returns the handler of GET /healthz and GET /readyz (mount it at
// both paths, or at "/").
//
// /healthz answers 200 "ok" whenever the process serves HTTP. /readyz calls
// ready with a 1 s timeout and answers 200 "ready", or 503 "not ready: "
// and the error. It answers within about 1 s even when ready ignores its
// context: concurrent probes share one call of ready, so a hung ready costs
// one goroutine, not one per probe. A nil ready is always ready.
func Health(ready func(ctx context.Context) error) http.Handler {
	rd := &readiness{ready: ready}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		respond(w, "text/plain; charset=utf-8", []byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := rd.check(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		respond(w, "text/plain; charset=utf-8", []byte("ready\n"))
	})
	return mux
}

// readiness runs at most one call of ready at a time; callers wait for the
// call in flight, each for at most readyTimeout.
type readiness struct {
	ready func(ctx context.Context) error

	mu       sync.Mutex
	inflight *probe
}

type probe struct {
	done chan struct{}
	err  error // set before done is closed
}

var errReadyTimeout = fmt.Errorf("readiness check took over %s", readyTimeout)

func (rd *readiness) check(ctx context.Context) error {
	if rd.ready == nil {
		return nil
	}
	rd.mu.Lock()
	p := rd.inflight
	if p == nil {
		p = &probe{done: make(chan struct{})}
		rd.inflight = p
		go rd.run(p)
	}
	rd.mu.Unlock()

	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return errReadyTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run calls ready, detached from any one request so that a probe that gives
// up does not cancel the check the others wait for.
func (rd *readiness) run(p *probe) {
	defer func() {
		if v := recover(); v != nil {
			p.err = fmt.Errorf("readiness check panicked: %v", v)
		}
		rd.mu.Lock()
		rd.inflight = nil
		rd.mu.Unlock()
		close(p.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if p.err = rd.ready(ctx); errors.Is(p.err, context.DeadlineExceeded) {
		p.err = fmt.Errorf("%w: %w", errReadyTimeout, p.err)
	}
}
