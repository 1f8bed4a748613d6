package admin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wxscan/wxscan/store"
)

// liveInterval is the least time between two updates of one stocktake's
// live pages: scans arriving faster are coalesced into one update.
const liveInterval = 400 * time.Millisecond

// liveHeartbeat is how often an idle event stream sends a comment, so that
// a client gone away is noticed.
const liveHeartbeat = 20 * time.Second

// hub fans a stocktake's updates out to the event streams of its live
// pages. A stocktake watched by nobody costs nothing: notify returns at
// once. A watched one is rendered at most once per liveInterval, however
// many scans arrive and however many pages watch it, and every page gets
// the same bytes; a slow page skips to the newest update.
type hub struct {
	ctx    context.Context
	log    *slog.Logger
	render func(id string) ([]byte, error)

	mu     sync.Mutex
	topics map[string]*topic
	wg     sync.WaitGroup
}

// topic is one watched stocktake.
type topic struct {
	id    string
	dirty chan struct{} // buffered 1: an update is due
	quit  chan struct{} // closed when the last watcher leaves
	subs  map[*watcher]struct{}
	last  []byte // the latest update sent, for watchers that join
}

// watcher is one event stream.
type watcher struct {
	ch chan []byte // buffered 1: the newest update not yet sent
}

func newHub(ctx context.Context, log *slog.Logger, render func(string) ([]byte, error)) *hub {
	return &hub{ctx: ctx, log: log, render: render, topics: map[string]*topic{}}
}

// notify marks stocktake id's live pages as due for an update. It never
// blocks.
func (h *hub) notify(id string) {
	h.mu.Lock()
	t := h.topics[id]
	h.mu.Unlock()
	if t != nil {
		t.poke()
	}
}

// notifyAll marks every watched stocktake as due for an update.
func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.topics {
		t.poke()
	}
}

func (t *topic) poke() {
	select {
	case t.dirty <- struct{}{}:
	default:
	}
}

// watch adds a watcher of stocktake id, which gets the latest update at
// once (if the stocktake is watched already) and a fresh one soon after.
// Call the returned function to leave.
func (h *hub) watch(id string) (*watcher, func()) {
	w := &watcher{ch: make(chan []byte, 1)}
	h.mu.Lock()
	t := h.topics[id]
	if t == nil {
		t = &topic{id: id, dirty: make(chan struct{}, 1), quit: make(chan struct{}), subs: map[*watcher]struct{}{}}
		h.topics[id] = t
		h.wg.Add(1)
		go h.run(t)
	}
	t.subs[w] = struct{}{}
	if t.last != nil {
		w.ch <- t.last
	}
	h.mu.Unlock()
	t.poke()
	return w, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(t.subs, w)
		if len(t.subs) == 0 {
			delete(h.topics, id)
			close(t.quit)
		}
	}
}

// run renders t whenever it is due, at most once per liveInterval, until
// its last watcher leaves or the hub's context ends.
func (h *hub) run(t *topic) {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.quit:
			return
		case <-t.dirty:
		}
		data, err := h.render(t.id)
		if err != nil {
			h.log.Warn("console live update failed", "stocktake", t.id, "err", err)
		} else {
			h.mu.Lock()
			t.last = data
			for w := range t.subs {
				select { // drop a stale update the page has not taken yet
				case <-w.ch:
				default:
				}
				w.ch <- data
			}
			h.mu.Unlock()
		}
		select {
		case <-h.ctx.Done():
			return
		case <-t.quit:
			return
		case <-time.After(liveInterval):
		}
	}
}

// wait waits for the topics' goroutines to end (after the hub's context).
func (h *hub) wait() { h.wg.Wait() }

// events is GET /console/stocktakes/{id}/events: a server-sent event stream
// of the stocktake's live fragment (event "live", the HTML of its counts and
// latest scans), sent at once and then after each change, at most every
// liveInterval. It holds no store transaction while it waits, and ends when
// the client goes away, the session ends or the console closes.
func (c *Console) events(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	if _, err := c.cfg.DB.Stocktake(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return consoleErrorf(http.StatusNotFound, "没有这个盘点："+id)
		}
		return err
	}
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut the stream: this one lives on.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	watch, leave := c.hub.watch(id)
	defer leave()
	beat := time.NewTicker(liveHeartbeat)
	defer beat.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-c.ctx.Done():
			return nil
		case <-beat.C:
			buf.Reset()
			buf.WriteString(": ping\n\n")
		case data := <-watch.ch:
			if c.sessions.get(sess.id) == nil {
				return nil // signed out or expired meanwhile
			}
			buf.Reset()
			writeEvent(&buf, "live", data)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// writeEvent writes one server-sent event: each line of data on a data:
// line of its own.
func writeEvent(buf *bytes.Buffer, name string, data []byte) {
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteByte('\n')
	for line := range bytes.Lines(data) {
		buf.WriteString("data: ")
		buf.Write(bytes.TrimRight(line, "\r\n"))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}
