package events

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// mustPair connects two Buses to one embedded server: a callback and a
// workers process.
func mustPair(t *testing.T) (callback, workers *Bus) {
	t.Helper()
	srv, err := StartServer(ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	connect := func() *Bus {
		b, err := Connect(context.Background(), Options{URL: srv.ClientURL(), AppID: "wxA",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	return connect(), connect()
}

// offerAsync offers a reply to event id from b and reports the answer and
// how long it took.
func offerAsync(b *Bus, to, id string) <-chan time.Duration {
	took := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		ok, err := b.OfferReply(context.Background(), Reply{EventID: id, Content: "c", ReplyTo: to})
		if ok || err != nil {
			took <- -1
			return
		}
		took <- time.Since(start)
	}()
	return took
}

// mustAwait registers a wait for id on cb and flushes, so that the server
// knows cb's reply subscription before another connection offers (in
// Publish, the event's own publish follows the subscription on the same
// connection, which orders them).
func mustAwait(t *testing.T, cb *Bus, id string) chan offer {
	t.Helper()
	ch, err := cb.awaitRemote(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitHeld waits until ch holds an offer.
func waitHeld(t *testing.T, ch chan offer) {
	t.Helper()
	for range 500 {
		if len(ch) == 1 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("the offer never reached the waiting request")
}

// Offers that the waiting request does not take are told so at once, never
// left to their timeout: a second offer while one is in hand, and one still
// in hand when the request stops waiting. Nothing stays registered.
func TestUntakenOffersAreToldAtOnce(t *testing.T) {
	cb, wk := mustPair(t)
	ch := mustAwait(t, cb, "e1")
	first := offerAsync(wk, cb.ReplyTo(), "e1")
	waitHeld(t, ch)
	second := offerAsync(wk, cb.ReplyTo(), "e1")
	for name, took := range map[string]<-chan time.Duration{"second offer": second} {
		if d := <-took; d < 0 || d > 250*time.Millisecond {
			t.Fatalf("%s: answered after %s (negative: taken or failed)", name, d)
		}
	}
	cb.endRemote("e1", ch)
	if d := <-first; d < 0 || d > 250*time.Millisecond {
		t.Fatalf("offer in hand at the end: answered after %s (negative: taken or failed)", d)
	}
	if n := cb.remoteWaiting(); n != 0 {
		t.Fatalf("%d waits still registered", n)
	}
}

// While a WeChat retry's publish waits to hear it is a duplicate, two
// requests wait for one event: the one that stays gets the offer.
func TestOfferReachesTheRequestThatStays(t *testing.T) {
	cb, wk := mustPair(t)
	a := mustAwait(t, cb, "e2")
	bch := mustAwait(t, cb, "e2")
	cb.endRemote("e2", a) // the duplicate returns
	took := offerAsync(wk, cb.ReplyTo(), "e2")
	waitHeld(t, bch)
	cb.endRemote("e2", bch)
	<-took
	if n := cb.remoteWaiting(); n != 0 {
		t.Fatalf("%d waits still registered", n)
	}
}

// An offer read so late that its worker may have stopped waiting for the
// answer is not taken, and one for another event whose id reads the same
// in a subject is not either.
func TestPublishRefusesStaleAndForeignOffers(t *testing.T) {
	cb, _ := mustPair(t)
	ctx := context.Background()
	if err := cb.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	nc := cb.Conn()
	for _, tc := range []struct {
		name             string
		eventID, offerID string
		stale            bool
	}{
		{name: "stale", eventID: "m15", offerID: "m15", stale: true},
		{name: "another event", eventID: "m1.6", offerID: "m1_6"}, // both m1_6 in a subject
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Event{V: Version, ID: tc.eventID, AppID: "wxA", To: "gh", From: "o1", MsgType: "text", Content: "x",
				CreateTime: 1, ReceivedAt: time.Now()}
			inbox := nats.NewInbox()
			answers, err := nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatal(err)
			}
			defer answers.Unsubscribe()
			go func() {
				// Put the offer in the request's hands directly, dated
				// as the case says, once the request waits.
				for range 500 {
					cb.remote.mu.Lock()
					chs := cb.remote.m[token(e.ID)]
					cb.remote.mu.Unlock()
					if len(chs) > 0 {
						data, _ := json.Marshal(Reply{EventID: tc.offerID, Content: "offered"})
						at := time.Now()
						if tc.stale {
							at = at.Add(-offerTimeout)
						}
						chs[0] <- offer{m: &nats.Msg{Subject: "x", Reply: inbox, Data: data, Sub: answers}, at: at}
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
			r, err := cb.Publish(ctx, e, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r != nil {
				t.Fatalf("took %+v", r)
			}
			m, err := answers.NextMsg(time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(m.Data); got != "gone" {
				t.Fatalf("offer answered %q, want gone", got)
			}
		})
	}
}

func TestReplyToHeaderIsOursOrIgnored(t *testing.T) {
	for _, to := range []string{"", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcde.", strings.Repeat("a", 5000)} {
		if validReplyTo(to) {
			t.Errorf("validReplyTo(%.20q) = true", to)
		}
	}
	if to := RandomHex(8); !validReplyTo(to) {
		t.Errorf("validReplyTo(%q) = false for a token of ours", to)
	}
}

// remoteWaiting is how many requests wait for an offer from another
// process, for tests.
func (b *Bus) remoteWaiting() int {
	b.remote.mu.Lock()
	defer b.remote.mu.Unlock()
	n := 0
	for _, chs := range b.remote.m {
		n += len(chs)
	}
	return n
}
