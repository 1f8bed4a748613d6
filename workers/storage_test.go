package workers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers"
)

// pages serves the real staff pages on the harness's bus, as a callback
// process does, and returns their base URL and a client that does not
// follow redirects.
func (h *harness) pages(tb testing.TB) (string, *http.Client) {
	tb.Helper()
	p, err := callback.NewPages(callback.PagesConfig{PublicURL: publicURL, Logger: quiet()}, h.bus)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(p)
	tb.Cleanup(srv.Close)
	return srv.URL, &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func do(tb testing.TB, c *http.Client, req *http.Request) int {
	tb.Helper()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The reproduced attack wrote one state per unauthenticated GET /bind.
// Now a GET /bind writes nothing: the state is signed, not stored.
func TestBindStartWritesNothing(t *testing.T) {
	const n = 3000
	h := MustHarness(t)
	base, client := h.pages(t)
	before, size := h.counts(t), h.fileSize(t)
	states := map[string]bool{}
	for i := range n {
		req, _ := http.NewRequest(http.MethodGet, base+"/bind", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("GET /bind #%d: %d, want 302", i, resp.StatusCode)
		}
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		states[u.Query().Get("state")] = true
	}
	if got, want := len(states), n; got != want {
		t.Fatalf("distinct states=%d, want %d", got, want)
	}
	checkCounts(t, before, h.counts(t), nil)
	if got, want := h.fileSize(t), size; got != want {
		t.Fatalf("db file %d bytes, was %d", got, want)
	}
}

// The reproduced attack: 1,000 wrong POST /bind with 16 KB employee numbers
// grew the file by 30+ MB. Now they are refused by the pages (413: over the
// form's cap), oversized fields sent straight to the workers are refused
// too (400), and 1,000 wrong codes with made-up employee numbers from one
// session cost one counter record: the file does not grow.
func TestWrongBindFloodLeavesTheFileAlone(t *testing.T) {
	h := MustHarness(t)
	base, client := h.pages(t)
	sess := h.session(t, "oMallory")
	before, size := h.counts(t), h.fileSize(t)
	post := func(emp string) int {
		form := url.Values{"session": {sess}, "employee_no": {emp}, "bind_code": {"123456"}}
		req, _ := http.NewRequest(http.MethodPost, base+"/bind", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(t, client, req)
	}
	for i := range 1000 {
		emp := fmt.Sprintf("%05d", i) + strings.Repeat("9", 16000-5)
		if got := post(emp); got != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST /bind #%d with a 16 KB employee number: %d, want 413", i, got)
		}
		if _, rerr := call[events.BindSubmitResponse](t, h, events.OpBindSubmit,
			events.BindSubmitRequest{Session: sess, EmployeeNo: emp, BindCode: "123456"}); rerr == nil || rerr.Status != 400 {
			t.Fatalf("bind.submit #%d with a 16 KB employee number: %v, want 400", i, rerr)
		}
	}
	checkCounts(t, before, h.counts(t), nil)
	statuses := map[int]int{}
	for i := range 1000 {
		statuses[post(fmt.Sprintf("NOBODY%04d", i))]++
	}
	if want := map[int]int{400: store.MaxOpenIDBindFailures - 1, 429: 1000 - store.MaxOpenIDBindFailures + 1}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("answers=%v, want %v", statuses, want)
	}
	checkCounts(t, before, h.counts(t), map[string]int{"bind_attempts_openid": 1})
	if got, want := h.fileSize(t), size; got != want {
		t.Fatalf("db file %d bytes, was %d", got, want)
	}
}

// The workers prune every PruneInterval: expired OAuth uses, sessions and
// counters, and processed event ids older than ProcessedRetention.
func TestPruningRuns(t *testing.T) {
	h := MustHarness(t, func(c *workers.Config) {
		c.PruneInterval = 20 * time.Millisecond
		c.ProcessedRetention = 48 * time.Hour
	})
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111") // an OAuth use, a session
	h.submit(t, h.session(t, "oBob"), "E002", "000000")
	old := scanEvent(t, "oAnn", "EAN_13,1")
	old.CreateTime = h.clock().Unix()
	if errs := h.svc.HandleBatch(context.Background(), []events.Event{old}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	h.advance(24 * time.Hour)
	recent := scanEvent(t, "oAnn", "EAN_13,2")
	recent.CreateTime = h.clock().Unix()
	if errs := h.svc.HandleBatch(context.Background(), []events.Event{recent}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	c := h.counts(t)
	for _, b := range []string{"oauth_used_states", "oauth_used_codes", "bind_sessions", "bind_attempts", "bind_attempts_openid"} {
		if c[b] == 0 {
			t.Fatalf("setup left %s empty: %v", b, c)
		}
	}
	if got, want := c["processed_events"], 2; got != want {
		t.Fatalf("processed_events=%d, want %d", got, want)
	}
	// old was created 50 h ago, more than the 48 h retention and the hour
	// by which an event's stream message may outlive its creation; recent
	// 26 h ago; everything else expired.
	h.advance(26 * time.Hour)
	want := map[string]int{
		"oauth_used_states": 0, "oauth_used_codes": 0, "bind_sessions": 0,
		"bind_attempts": 0, "bind_attempts_openid": 0, "processed_events": 1, "processed": 0, "processed_at": 0,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c = h.counts(t)
		ok := true
		for b, n := range want {
			ok = ok && c[b] == n
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after pruning: %v, want %v", c, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The recent event is still known: a redelivery records nothing.
	if errs := h.svc.HandleBatch(context.Background(), []events.Event{recent}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got, want := h.counts(t)["processed_events"], 1; got != want {
		t.Fatalf("processed_events after redelivery=%d, want %d", got, want)
	}
	if got, want := len(h.scans(t, st.ID)), 2; got != want {
		t.Fatalf("scans=%d, want %d: the redelivery recorded again", got, want)
	}
}
