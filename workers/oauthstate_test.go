package workers_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/workers"
)

func (h *harness) start(tb testing.TB, next string) (authorizeURL, state string) {
	tb.Helper()
	s, rerr := call[events.BindStartResponse](tb, h, events.OpBindStart, events.BindStartRequest{Next: next})
	if rerr != nil {
		tb.Fatal(rerr)
	}
	u, err := url.Parse(s.AuthorizeURL)
	if err != nil {
		tb.Fatal(err)
	}
	return s.AuthorizeURL, u.Query().Get("state")
}

func (h *harness) exchange(tb testing.TB, code, state string) (events.SessionResponse, *events.RPCError) {
	tb.Helper()
	return call[events.SessionResponse](tb, h, events.OpOAuthCallback, events.OAuthCallbackRequest{Code: code, State: state})
}

// WeChat's second redirect with the same code and state gets the same bind
// session, without a second exchange and without a new record.
func TestOAuthSecondRedirectGetsTheSameSession(t *testing.T) {
	h := MustHarness(t)
	au, _ := h.start(t, "")
	code, state := h.authorize(t, au, "oAnn", false)
	first, rerr := h.exchange(t, code, state)
	if rerr != nil {
		t.Fatal(rerr)
	}
	before := h.counts(t)
	for range 3 {
		again, rerr := h.exchange(t, code, state)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if again != first {
			t.Fatalf("second redirect=%+v, want %+v", again, first)
		}
	}
	checkCounts(t, before, h.counts(t), nil)
	if got, want := h.fake.Calls("/sns/oauth2/access_token"), 1; got != want {
		t.Fatalf("exchanges=%d, want %d", got, want)
	}
}

// The two redirects may arrive at once: both get the one session.
func TestOAuthConcurrentRedirectsGetOneSession(t *testing.T) {
	h := MustHarness(t)
	au, _ := h.start(t, "")
	code, state := h.authorize(t, au, "oAnn", false)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions = map[string]int{}
	)
	for range 4 {
		wg.Go(func() {
			s, rerr := h.exchange(t, code, state)
			if rerr != nil {
				t.Error(rerr)
				return
			}
			mu.Lock()
			sessions[s.Session]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(sessions) != 1 {
		t.Fatalf("sessions=%v, want one", sessions)
	}
	if got, want := h.counts(t)["bind_sessions"], 1; got != want {
		t.Fatalf("stored sessions=%d, want %d", got, want)
	}
}

// The reproduced attack: a recent code replayed with made-up states got a
// fresh 30-minute bind session each. Now a made-up or altered state, and a
// genuine fresh state with a code already used, are refused with 400 and
// store nothing.
func TestOAuthCodeReplayWithOtherStatesIsRefused(t *testing.T) {
	h := MustHarness(t)
	au, _ := h.start(t, "")
	code, state := h.authorize(t, au, "oAnn", false)
	if _, rerr := h.exchange(t, code, state); rerr != nil {
		t.Fatal(rerr)
	}
	_, fresh := h.start(t, "")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	scanState := "s" + state[1:] // the same state, marked for the scan page
	before := h.counts(t)
	for _, tt := range []struct {
		name, state, wantCode string
	}{
		{"made up", "attacker-state-1", "state_invalid"},
		{"made up like ours", "b.abc.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "state_invalid"},
		{"empty", "", "state_invalid"},
		{"signature altered", flip(state, len(state)-3), "state_invalid"},
		{"nonce altered", flip(state, len(state)-26), "state_invalid"},
		{"page marker altered", scanState, "state_invalid"},
		{"signature cut off", state[:strings.LastIndexByte(state, '.')], "state_invalid"},
		{"fresh genuine state", fresh, "code_used"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, rerr := h.exchange(t, code, tt.state)
			if rerr == nil || rerr.Status != 400 || rerr.Code != tt.wantCode {
				t.Fatalf("replayed code with state %q: %v, want 400 %s", tt.state, rerr, tt.wantCode)
			}
		})
	}
	checkCounts(t, before, h.counts(t), nil)
	if got, want := h.fake.Calls("/sns/oauth2/access_token"), 1; got != want {
		t.Fatalf("exchanges=%d, want %d", got, want)
	}
}

// Every OAuth refusal is a clear 4xx and stores nothing.
func TestOAuthRefusalsStoreNothing(t *testing.T) {
	h := MustHarness(t)
	au, _ := h.start(t, "")
	usedCode, usedState := h.authorize(t, au, "oAnn", false)
	if _, rerr := h.exchange(t, usedCode, usedState); rerr != nil {
		t.Fatal(rerr)
	}
	au, lateState := h.start(t, "")
	lateCode, _ := h.authorize(t, au, "oLate", false)
	au, _ = h.start(t, "")
	snapCode, snapState := h.authorize(t, au, "oSnap", true)
	_, s1 := h.start(t, "")
	_, s2 := h.start(t, "")
	before := h.counts(t)
	for _, tt := range []struct {
		name        string
		code, state string
		advance     time.Duration
		status      int
		wantCode    string
	}{
		{"state used before with another code", h.fake.IssueCode("oAnn", false), usedState, 0, 400, "state_used"},
		{"expired state", lateCode, lateState, 11 * time.Minute, 410, "state_expired"},
		{"missing code", "", s1, 0, 400, "missing_code"},
		{"invalid code 40029", "nonsense", s2, 0, 400, "code_invalid"},
		{"snapshot user", snapCode, snapState, 0, 403, "snapshot_user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.advance(tt.advance)
			defer h.advance(-tt.advance)
			_, rerr := h.exchange(t, tt.code, tt.state)
			if rerr == nil || rerr.Status != tt.status || rerr.Code != tt.wantCode || rerr.Message == "" {
				t.Fatalf("%v, want %d %s with a message", rerr, tt.status, tt.wantCode)
			}
		})
	}
	checkCounts(t, before, h.counts(t), nil)
	// The second redirect of the original pair still works.
	if _, rerr := h.exchange(t, usedCode, usedState); rerr != nil {
		t.Fatalf("original pair after the refusals: %v", rerr)
	}
}

// The page to show next is inside the signed state.
func TestOAuthStateCarriesTheNextPage(t *testing.T) {
	h := MustHarness(t)
	for _, next := range []string{"scan", "bind"} {
		au, _ := h.start(t, next)
		code, state := h.authorize(t, au, "oAnn", false)
		s, rerr := h.exchange(t, code, state)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if got, want := s.Next, next; got != want {
			t.Fatalf("next=%q, want %q", got, want)
		}
	}
}

// A state signed by another database's key (another installation, or one
// made before the key was replaced) is refused.
func TestOAuthStateOfAnotherKeyIsRefused(t *testing.T) {
	other := MustHarness(t)
	_, foreign := other.start(t, "")
	h := MustHarness(t)
	code := h.fake.IssueCode("oAnn", false)
	if _, rerr := h.exchange(t, code, foreign); rerr == nil || rerr.Code != "state_invalid" {
		t.Fatalf("foreign state: %v, want state_invalid", rerr)
	}
	// The key is kept in the store: a restarted service accepts its states.
	_, state := h.start(t, "")
	h.restart(t)
	if _, rerr := h.exchange(t, code, state); rerr != nil {
		t.Fatalf("state issued before a restart: %v", rerr)
	}
}

// restart stops the service and starts a new one on the same store, bus and
// WeChat.
func (h *harness) restart(tb testing.TB) {
	tb.Helper()
	h.svc.Stop()
	svc, err := workers.New(h.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(svc.Stop)
	h.svc = svc
}
