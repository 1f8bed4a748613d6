package workers_test

// Failure drills (SPEC §5): WeChat's API down (5xx) or hanging (timeouts)
// for a while, and an event that never succeeds. They run the workers on
// real parts (embedded JetStream, bbolt, the fake WeChat over HTTP) and check
// that a reply goes out exactly once, that retries are JetStream redeliveries
// spaced by a growing backoff rather than a hot loop, and that what cannot be
// delivered lands in WECHAT_DLQ with its reason and replays once fixed.
//
// Timing checks are bounds, not exact times: a redelivery never comes before
// its backoff (JetStream does not redeliver early), so the number of calls an
// outage can fail is bounded from above whatever the machine's load.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/workers"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

const pathSend = "/cgi-bin/message/custom/send"

// fastBackoff is events.DefaultBackoff at a tenth of the time: the same
// shape (50 ms doubling up to 3 s), so that a 1 s outage plays a 10 s one.
func fastBackoff(attempt int) time.Duration { return events.DefaultBackoff(attempt) / 10 }

// MustDrillHarness is MustHarness with the workers restarted on cc (their
// consumer's backoff and attempts) and on a WeChat client that gives up on
// a call after apiTimeout (0: the client's default).
func MustDrillHarness(tb testing.TB, cc events.ConsumerConfig, apiTimeout time.Duration) *harness {
	tb.Helper()
	h := MustHarness(tb)
	h.svc.Stop()
	var hc *http.Client
	if apiTimeout > 0 {
		hc = &http.Client{Timeout: apiTimeout}
	}
	wx, err := wechatapi.New(wechatapi.Config{BaseURL: h.api.URL, AppID: eventstest.AppID, AppSecret: "secret",
		Cache: h.db, HTTPClient: hc, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	h.svc, err = workers.New(workers.Config{
		AppID: eventstest.AppID, PublicURL: publicURL, OAuthBase: h.api.URL,
		DB: h.db, Bus: h.bus, WeChat: wx, Now: h.clock, Logger: quiet(), Consumer: cc,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.svc.Stop)
	return h
}

// settled waits until the workers' consumer has nothing pending: every event
// acked or terminated, none waiting for a redelivery. After it nothing more
// can be sent for the events published so far.
func (h *harness) settled(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := h.bus.Status(context.Background(), "workers")
		if err != nil {
			tb.Fatal(err)
		}
		if st.Pending == 0 && st.AckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consumer not settled: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deadLetters waits for at least n dead letters and returns them all.
func (h *harness) deadLetters(tb testing.TB, n int) []events.DeadLetter {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		dl, err := h.bus.DeadLetters(context.Background(), 0)
		if err != nil {
			tb.Fatal(err)
		}
		if len(dl) >= n {
			return dl
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dead letters=%d, want %d", len(dl), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkDeliveredOnce checks the end state of a drill that must succeed: one
// message to openid naming code, no dead letter, one scan, an empty outbox.
func (h *harness) checkDeliveredOnce(tb testing.TB, openid, code, stocktake string) {
	tb.Helper()
	var got []string
	for _, m := range h.fake.Sent() {
		if m.ToUser == openid {
			got = append(got, m.Content)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], code) {
		tb.Fatalf("messages to %s: %q, want one naming %s", openid, got, code)
	}
	dl, err := h.bus.DeadLetters(context.Background(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	if got, want := len(dl), 0; got != want {
		tb.Fatalf("dead letters=%d (%+v), want %d", got, dl, want)
	}
	if got, want := len(h.scans(tb, stocktake)), 1; got != want {
		tb.Fatalf("scans=%d, want %d (a redelivery must not record again)", got, want)
	}
	h.outboxEmpties(tb)
}

// outboxEmpties waits for delivered replies to leave the outbox: in the next
// batch's transaction, or on their own within a second.
func (h *harness) outboxEmpties(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := h.db.OutboxLen()
		if err != nil {
			tb.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("outbox=%d after delivery, want 0", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gaps(times []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(times); i++ {
		out = append(out, times[i].Sub(times[i-1]))
	}
	return out
}

// maxFailedCalls is how many calls an outage of d can fail at most when
// redelivery n+1 comes no sooner than backoff(n) after attempt n: the calls
// whose earliest possible time falls inside the outage.
func maxFailedCalls(backoff func(int) time.Duration, d time.Duration) int {
	n := 0
	for at := time.Duration(0); at < d; at += backoff(n) {
		n++
	}
	return n
}

// checkBackoff checks that each call after a failure came no sooner than
// extra+backoff(attempt) after it (extra: what the failed call itself took,
// e.g. the client's timeout), and that the gaps grow, with slack for a
// loaded machine.
func checkBackoff(tb testing.TB, times []time.Time, backoff func(int) time.Duration, extra time.Duration) {
	tb.Helper()
	const slack = 50 * time.Millisecond
	g := gaps(times)
	for i, d := range g {
		if least := extra + backoff(i+1) - 5*time.Millisecond; d < least {
			tb.Fatalf("gap %d=%v, want >= %v (the backoff after attempt %d); gaps %v", i+1, d, least, i+1, g)
		}
		if i > 0 && d+slack < g[i-1] {
			tb.Fatalf("gap %d=%v shorter than gap %d=%v: gaps %v, want growing", i+1, d, i, g[i-1], g)
		}
	}
}

// A WeChat outage answering HTTP 500: the reply waits in the outbox and the
// event is redelivered with a growing delay until WeChat is back.
func TestDrillWeChat5xx(t *testing.T) {
	// The arithmetic of SPEC §5 with the real backoff: a 10 s outage fails
	// at most 5 calls, far from the default MaxDeliver of 12.
	if got, want := maxFailedCalls(events.DefaultBackoff, 10*time.Second), 5; got != want {
		t.Fatalf("a 10 s outage fails up to %d calls, want %d", got, want)
	}
	for _, tt := range []struct {
		name    string
		backoff func(int) time.Duration
		outage  time.Duration
	}{
		{name: "10 s outage at a tenth of the time", backoff: fastBackoff, outage: time.Second},
		{name: "3 s outage with the default backoff", backoff: events.DefaultBackoff, outage: 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := MustDrillHarness(t, events.ConsumerConfig{Backoff: tt.backoff}, 0)
			st := h.openStocktake(t)
			h.bind(t, "oAnn", "E001", "111111")

			start := time.Now()
			h.fake.FailFor(pathSend, 500, tt.outage)
			h.publish(t, scanEvent(t, "oAnn", "EAN_13,6901234567892"))
			h.sentTo(t, "oAnn", 1)
			took := time.Since(start)
			h.settled(t)

			times := h.fake.CallTimes(pathSend)
			failed, most := len(times)-1, maxFailedCalls(tt.backoff, tt.outage)
			t.Logf("outage %v: delivered after %v, %d failed calls (at most %d), gaps %v", tt.outage, took, failed, most, gaps(times))
			if failed < 1 || failed > most {
				t.Fatalf("failed calls=%d, want 1 to %d (redelivered with backoff, not in a loop)", failed, most)
			}
			if took < tt.outage {
				t.Fatalf("delivered after %v, inside the %v outage", took, tt.outage)
			}
			checkBackoff(t, times, tt.backoff, 0)
			h.checkDeliveredOnce(t, "oAnn", "6901234567892", st.ID)
		})
	}
}

// WeChat hanging longer than the client waits: each attempt times out, the
// event is redelivered with backoff, and the calls given up send nothing.
func TestDrillWeChatTimeout(t *testing.T) {
	const (
		timeout = 300 * time.Millisecond
		delay   = time.Second // WeChat's answer comes after the client gave up
		hung    = 3           // calls that hang before WeChat recovers
	)
	h := MustDrillHarness(t, events.ConsumerConfig{Backoff: fastBackoff}, timeout)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")

	h.fake.SetDelay(pathSend, delay)
	h.publish(t, scanEvent(t, "oAnn", "EAN_13,6901234567892"))
	deadline := time.Now().Add(10 * time.Second)
	for h.fake.Calls(pathSend) < hung {
		if time.Now().After(deadline) {
			t.Fatalf("custom/send calls=%d, want %d", h.fake.Calls(pathSend), hung)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.fake.SetDelay(pathSend, 0)
	h.sentTo(t, "oAnn", 1)
	h.settled(t)

	times := h.fake.CallTimes(pathSend)
	t.Logf("%d calls, gaps %v", len(times), gaps(times))
	// The next call comes at least timeout+backoff(3) after the third, long
	// after the delay was removed; one more only if this goroutine stalled.
	if got := len(times); got < hung+1 || got > hung+2 {
		t.Fatalf("custom/send calls=%d, want %d or %d", got, hung+1, hung+2)
	}
	checkBackoff(t, times[:hung+1], fastBackoff, timeout)
	// Let the hung calls' delays run out: they must not be sent late.
	time.Sleep(time.Until(times[hung-1].Add(delay + 100*time.Millisecond)))
	h.checkDeliveredOnce(t, "oAnn", "6901234567892", st.ID)
}

// An event whose reply cannot be delivered goes to WECHAT_DLQ with the
// reason: after MaxDeliver attempts for a transient failure, at once for a
// permanent one. The scan stays recorded once and the reply stays in the
// outbox, so that a replay after fixing the cause delivers it once.
func TestDrillDeadLetterAndReplay(t *testing.T) {
	const maxDeliver = 3
	for _, tt := range []struct {
		name         string
		fail         func(h *harness) // WeChat refuses the reply
		fix          func(h *harness) // the operator fixes the cause
		wantAttempts int
		wantReason   []string
	}{
		{
			name:         "transient failure forever",
			fail:         func(h *harness) { h.fake.FailFor(pathSend, 503, time.Hour) },
			fix:          func(h *harness) { h.fake.FailFor(pathSend, 0, 0) },
			wantAttempts: maxDeliver,
			wantReason:   []string{"custom/send", "503"},
		},
		{
			// 45015: the 48 h reply window passed; WeChat refuses for good
			// until the user writes again.
			name:         "permanent refusal 45015",
			fail:         func(h *harness) { h.fake.FailNext(pathSend, 45015, 1) },
			fix:          func(*harness) {},
			wantAttempts: 1,
			wantReason:   []string{"custom/send", "45015"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := MustDrillHarness(t, events.ConsumerConfig{MaxDeliver: maxDeliver, Backoff: fastBackoff}, 0)
			st := h.openStocktake(t)
			h.bind(t, "oAnn", "E001", "111111")

			tt.fail(h)
			e := scanEvent(t, "oAnn", "EAN_13,6901234567892")
			h.publish(t, e)
			dl := h.deadLetters(t, 1)
			h.settled(t)
			if got, want := len(dl), 1; got != want {
				t.Fatalf("dead letters=%d, want %d", got, want)
			}
			d := dl[0]
			t.Logf("dead letter: %+v", d)
			if d.EventID != e.ID || d.Subject != e.Subject() {
				t.Fatalf("dead letter %+v, want event %s on %s", d, e.ID, e.Subject())
			}
			if got, want := d.Attempts, tt.wantAttempts; got != want {
				t.Fatalf("attempts=%d, want %d", got, want)
			}
			for _, s := range tt.wantReason {
				if !strings.Contains(d.Reason, s) {
					t.Fatalf("reason=%q, want it to name %q", d.Reason, s)
				}
			}
			if d.FirstFailed.IsZero() || d.FirstFailed.After(d.DeadAt) {
				t.Fatalf("first failed %v, dead at %v", d.FirstFailed, d.DeadAt)
			}
			if got, want := h.fake.Calls(pathSend), tt.wantAttempts; got != want {
				t.Fatalf("custom/send calls=%d, want %d (one per attempt)", got, want)
			}
			if got, want := len(h.fake.Sent()), 0; got != want {
				t.Fatalf("sent=%d, want %d", got, want)
			}
			if got, want := len(h.scans(t, st.ID)), 1; got != want {
				t.Fatalf("scans=%d, want %d", got, want)
			}
			if n, err := h.db.OutboxLen(); err != nil || n != 1 {
				t.Fatalf("outbox=%d, %v, want the undelivered reply kept", n, err)
			}

			tt.fix(h)
			if _, err := h.bus.Replay(context.Background(), d.ID); err != nil {
				t.Fatal(err)
			}
			h.sentTo(t, "oAnn", 1)
			h.settled(t)
			h.checkDeliveredOnce(t, "oAnn", "6901234567892", st.ID)
			if got, want := h.fake.Calls(pathSend), tt.wantAttempts+1; got != want {
				t.Fatalf("custom/send calls=%d, want %d", got, want)
			}
			if _, err := h.bus.Replay(context.Background(), d.ID); !errors.Is(err, events.ErrNoSuchDeadLetter) {
				t.Fatalf("second replay: %v, want %v", err, events.ErrNoSuchDeadLetter)
			}
		})
	}
}
