package workers_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/workers"
)

// notified records the calls of Config.OnScans.
type notified struct {
	mu    sync.Mutex
	calls [][]string
}

func (n *notified) add(ids ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, append([]string{}, ids...))
}

// waitFor waits up to 5 s for a call after the first `after` that names id
// or names none (any stocktake).
func (n *notified) waitFor(tb testing.TB, after int, id, what string) int {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		n.mu.Lock()
		calls := n.calls
		n.mu.Unlock()
		for i := after; i < len(calls); i++ {
			if len(calls[i]) == 0 || slices.Contains(calls[i], id) {
				return len(calls)
			}
		}
	}
	tb.Fatalf("%s: OnScans not called for %s within 5 s", what, id)
	return 0
}

func (n *notified) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.calls)
}

// TestOnScans: the console's hook is called after a scan recorded from the
// chat, from the /scan page, and after a quantity change and an undo from
// the page.
func TestOnScans(t *testing.T) {
	var n notified
	h := MustHarness(t, func(c *workers.Config) { c.OnScans = n.add })
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")

	seen := n.count()
	h.ask(t, chatScan(t, "oAnn", "EAN_13,6901234567892"))
	seen = n.waitFor(t, seen, st.ID, "chat scan")

	sess := h.session(t, "oAnn")
	res, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "EAN_13,6920000000018", ClientID: "c1"})
	if rerr != nil {
		t.Fatal(rerr)
	}
	seen = n.waitFor(t, seen, st.ID, "page scan")
	if res.Scan == nil {
		t.Fatalf("page scan answered no scan: %+v", res)
	}
	if _, rerr := call[events.ScanChangeResponse](t, h, events.OpScanQty, events.ScanQtyRequest{Session: sess, Ref: res.Scan.Ref, Qty: 5}); rerr != nil {
		t.Fatal(rerr)
	}
	seen = n.waitFor(t, seen, st.ID, "qty")
	if _, rerr := call[events.ScanChangeResponse](t, h, events.OpScanUndo, events.ScanUndoRequest{Session: sess, Ref: res.Scan.Ref}); rerr != nil {
		t.Fatal(rerr)
	}
	n.waitFor(t, seen, st.ID, "undo")
}
