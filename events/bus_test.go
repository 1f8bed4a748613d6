package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

func mustEvent(tb testing.TB, raw []byte) events.Event {
	tb.Helper()
	e, err := events.Parse(eventstest.AppID, raw, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func streamMsgs(tb testing.TB, bus *events.Bus, name string) uint64 {
	tb.Helper()
	s, err := bus.JetStream().Stream(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishDedupesConcurrentRetries(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	e := mustEvent(t, scanXML("o1", 1700000000, "EAN_13,6901234567892"))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			_, err := bus.Publish(context.Background(), e, 0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := streamMsgs(t, bus, events.StreamName), uint64(1); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
	// Two scans of different codes by one user in the same second are two.
	if _, err := bus.Publish(context.Background(), mustEvent(t, scanXML("o1", 1700000000, "EAN_13,6901234567893")), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := streamMsgs(t, bus, events.StreamName), uint64(2); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
	// The subject is the public one.
	s, _ := bus.JetStream().Stream(context.Background(), events.StreamName)
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Subject, "wechat."+eventstest.AppID+".event.scancode_waitmsg"; got != want {
		t.Fatalf("subject=%q, want %q", got, want)
	}
}

func TestPublishFailsFastWhenNATSIsDown(t *testing.T) {
	srv := eventstest.MustServer(t)
	bus := eventstest.MustBus(t, srv)
	srv.Close()
	start := time.Now()
	_, err := bus.Publish(context.Background(), mustEvent(t, mustRead(t, "text.xml")), 0)
	if err == nil {
		t.Fatal("publish succeeded with NATS down")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publish took %v, want < 2s", d)
	}
	if err := bus.Ready(context.Background()); err == nil {
		t.Fatal("Ready=nil with NATS down")
	}
}

// A stream that takes the event but never acknowledges it (here a plain
// subscriber stands in for a JetStream that hangs): Publish gives up after
// PublishTimeout, so that the callback answers 503 in time.
func TestPublishGivesUpAfterPublishTimeout(t *testing.T) {
	srv := eventstest.MustServer(t)
	bus, err := events.Connect(context.Background(), events.Options{
		URL: srv.ClientURL(), AppID: "wxnostream", Name: t.Name(),
		PublishTimeout: 200 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	sink, err := bus.Conn().Subscribe("wechat.wxnostream.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Unsubscribe()
	if err := bus.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	e, err := events.Parse("wxnostream", mustRead(t, "text.xml"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = bus.Publish(context.Background(), e, 0)
	took := time.Since(start)
	if err == nil {
		t.Fatal("publish succeeded without an acknowledgement")
	}
	if took < 150*time.Millisecond || took > time.Second {
		t.Fatalf("publish gave up after %v, want about the 200ms PublishTimeout", took)
	}
}

// The workers hand a reply to the waiting request in their own process
// directly, and to one in another process over NATS; either way exactly
// one path delivers it.
func TestReplyGoesToExactlyOnePath(t *testing.T) {
	for _, tc := range []struct {
		name string
		// sameProcess: the workers' Bus is the callback's.
		sameProcess bool
	}{
		{name: "same process", sameProcess: true},
		{name: "another process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := eventstest.MustServer(t)
			bus := eventstest.MustBus(t, srv)
			workers := bus
			if !tc.sameProcess {
				workers = eventstest.MustBus(t, srv)
			}
			// spy counts the offers taken over NATS (their "ok" answers).
			var crossed atomic.Int32
			spy, err := eventstest.MustBus(t, srv).Conn().Subscribe("_INBOX.>", func(m *nats.Msg) {
				if string(m.Data) == "ok" {
					crossed.Add(1)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer spy.Unsubscribe()
			ctx := context.Background()
			e := mustEvent(t, mustRead(t, "text.xml"))

			// The worker answers while the callback waits: passive reply.
			// It offers once the event is stored, as workers do, and a
			// moment later, so that the request waits by then (an offer
			// before that goes over NATS in either shape).
			var offered atomic.Bool
			go func() {
				to, err := waitStored(ctx, bus, e)
				if err != nil {
					t.Error(err)
					return
				}
				if to != bus.ReplyTo() {
					t.Errorf("stored with reply-to %q, want the callback's %q", to, bus.ReplyTo())
				}
				time.Sleep(200 * time.Millisecond)
				for range 100 {
					ok, err := workers.OfferReply(ctx, events.Reply{EventID: e.ID, ToUser: e.From, FromUser: e.To, Content: "hi", ReplyTo: to})
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						offered.Store(true)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			r, err := bus.Publish(ctx, e, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r == nil || r.Content != "hi" {
				t.Fatalf("reply=%+v, want content hi", r)
			}
			time.Sleep(50 * time.Millisecond)
			if !offered.Load() {
				t.Fatal("worker was not told that the callback took the reply")
			}
			want := int32(1)
			if tc.sameProcess {
				want = 0
			}
			if got := crossed.Load(); got != want {
				t.Fatalf("%d offers taken over NATS, want %d", got, want)
			}

			// No callback waiting: the worker is told to send it itself,
			// at once (not after the offer's own timeout).
			for _, to := range []string{bus.ReplyTo(), "", "gone1234"} {
				offerStart := time.Now()
				ok, err := workers.OfferReply(ctx, events.Reply{EventID: "nobody-waits", Content: "x", ReplyTo: to})
				if err != nil || ok {
					t.Fatalf("OfferReply(reply-to %q)=%v,%v, want false,nil", to, ok, err)
				}
				if d := time.Since(offerStart); d > 250*time.Millisecond {
					t.Fatalf("OfferReply(reply-to %q) took %s to hear nobody waits", to, d)
				}
			}
			// Nor once the request stopped waiting.
			ok, err := workers.OfferReply(ctx, events.Reply{EventID: e.ID, Content: "late", ReplyTo: bus.ReplyTo()})
			if err != nil || ok {
				t.Fatalf("late OfferReply=%v,%v, want false,nil", ok, err)
			}

			// A duplicate does not wait for a reply.
			start := time.Now()
			r, err = bus.Publish(ctx, e, 3*time.Second)
			if err != nil || r != nil {
				t.Fatalf("duplicate publish=%v,%v", r, err)
			}
			if time.Since(start) > time.Second {
				t.Fatal("duplicate publish waited for a reply")
			}
		})
	}
}

// waitStored waits until e is in the WECHAT stream and returns its
// ReplyToHeader, as the workers read it.
func waitStored(ctx context.Context, bus *events.Bus, e events.Event) (string, error) {
	st, err := bus.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		return "", err
	}
	for range 200 {
		if m, err := st.GetLastMsgForSubject(ctx, e.Subject()); err == nil {
			return m.Header.Get(events.ReplyToHeader), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", fmt.Errorf("event %s not stored", e.ID)
}

// Offers racing through both paths, and the request's own timeout: the
// request takes at most one, the one whose offer was told so.
func TestRacingOffersOneTaken(t *testing.T) {
	srv := eventstest.MustServer(t)
	bus := eventstest.MustBus(t, srv)
	other := eventstest.MustBus(t, srv)
	ctx := context.Background()
	for round := range 8 {
		e := mustEvent(t, mustRead(t, "text.xml"))
		e.ID = fmt.Sprintf("race-%d-%d", round, time.Now().UnixNano())
		// The later rounds time out while the offers still come.
		wait := 3 * time.Second
		if round%2 == 1 {
			wait = time.Duration(round) * time.Millisecond
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			taken []string
		)
		start := make(chan struct{})
		for i := range 8 {
			via := bus
			if i%2 == 1 {
				via = other
			}
			wg.Go(func() {
				<-start
				content := fmt.Sprintf("offer %d", i)
				for range 20 {
					ok, err := via.OfferReply(ctx, events.Reply{EventID: e.ID, Content: content, ReplyTo: bus.ReplyTo()})
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						taken = append(taken, content)
						mu.Unlock()
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		close(start)
		r, err := bus.Publish(ctx, e, wait)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(taken) > 1:
			t.Fatalf("round %d: %d offers were told they were taken: %v", round, len(taken), taken)
		case len(taken) == 1 && (r == nil || r.Content != taken[0]):
			t.Fatalf("round %d: offer %q was taken, request answered %+v", round, taken[0], r)
		case len(taken) == 0 && r != nil:
			t.Fatalf("round %d: request answered %q, no offer was told so", round, r.Content)
		}
	}
}

// A waiting request costs no subscription of its own: the process's one
// reply subscription serves them all. The consumed event names the process
// that waits, and an event that waits for nothing names none.
func TestWaitingRequestsShareOneSubscription(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan events.Event, 8)
	c, err := bus.Consume(ctx, events.ConsumerConfig{}, events.Each(func(_ context.Context, e events.Event) error {
		got <- e
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	// The first publish makes the connection's subscription for
	// JetStream's acknowledgements; count from there.
	loc := mustEvent(t, mustRead(t, "location_event.xml"))
	if _, err := bus.Publish(ctx, loc, 0); err != nil {
		t.Fatal(err)
	}
	base := bus.Conn().NumSubscriptions()
	var wg sync.WaitGroup
	for i := range 5 {
		raw := fmt.Sprintf(`<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>c</Content><MsgId>%d</MsgId></xml>`, 100+i)
		wg.Go(func() {
			if _, err := bus.Publish(ctx, mustEvent(t, []byte(raw)), 300*time.Millisecond); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // all five wait now
	if got, want := bus.Conn().NumSubscriptions(), base+1; got != want {
		t.Errorf("subscriptions while five requests wait=%d, want %d", got, want)
	}
	wg.Wait()
	if got, want := bus.Conn().NumSubscriptions(), base+1; got != want {
		t.Errorf("subscriptions after=%d, want %d", got, want)
	}
	for range 5 {
		select {
		case e := <-got:
			if e.ReplyTo != bus.ReplyTo() {
				t.Errorf("event %s: ReplyTo=%q, want %q", e.ID, e.ReplyTo, bus.ReplyTo())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("events not consumed")
		}
	}
	// A header that is not a token of ours is ignored: an offer's subject
	// never carries what a publisher put there.
	crafted := mustEvent(t, []byte(`<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>c</Content><MsgId>200</MsgId></xml>`))
	data, err := crafted.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.JetStream().PublishMsg(ctx, &nats.Msg{Subject: crafted.Subject(), Data: data,
		Header: nats.Header{events.ReplyToHeader: {strings.Repeat("a", 5000)}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.ReplyTo != "" {
			t.Errorf("crafted header read as ReplyTo %.20q...", e.ReplyTo)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("crafted event not consumed")
	}
	st, err := bus.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, loc.Subject())
	if err != nil {
		t.Fatal(err)
	}
	if to := m.Header.Get(events.ReplyToHeader); to != "" {
		t.Errorf("an event that waits for nothing is stored with reply-to %q", to)
	}
}

// An event whose id is longer than any the callback makes is dead-lettered
// at once, never handed to the workers (its reply subject would be too
// long for the server).
func TestOverlongEventIDIsDeadLettered(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := make(chan string, 4)
	c, err := bus.Consume(ctx, events.ConsumerConfig{}, events.Each(func(_ context.Context, e events.Event) error {
		handled <- e.ID
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, n := range []int{128, 129} {
		e := mustEvent(t, []byte(`<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>c</Content><MsgId>1</MsgId></xml>`))
		e.ID = strings.Repeat("x", n)
		data, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.JetStream().PublishMsg(ctx, &nats.Msg{Subject: e.Subject(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case id := <-handled:
		if len(id) != 128 {
			t.Fatalf("handled an id of %d bytes", len(id))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the 128-byte id was not handled")
	}
	deadline := time.Now().Add(10 * time.Second)
	for streamMsgs(t, bus, events.DLQStreamName) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := streamMsgs(t, bus, events.DLQStreamName), uint64(1); got != want {
		t.Fatalf("dlq msgs=%d, want %d", got, want)
	}
	select {
	case id := <-handled:
		t.Fatalf("handled an id of %d bytes", len(id))
	default:
	}
}

func TestConsumeAcksRetriesAndDeadLetters(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	attempts := map[string]int{}
	done := make(chan string, 100)
	h := func(_ context.Context, e events.Event) error {
		mu.Lock()
		attempts[e.Content]++
		n := attempts[e.Content]
		mu.Unlock()
		switch e.Content {
		case "ok":
		case "flaky": // fails twice, then works
			if n < 3 {
				return errors.New("wechat 503")
			}
		case "never":
			return errors.New("wechat always down")
		case "bad":
			return events.Permanent(errors.New("errcode 45015: response out of time limit"))
		}
		done <- e.Content
		return nil
	}
	c, err := bus.Consume(ctx, events.ConsumerConfig{
		MaxDeliver: 3,
		Backoff:    func(int) time.Duration { return 20 * time.Millisecond },
	}, events.Each(h))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for i, content := range []string{"ok", "flaky", "never", "bad"} {
		raw := fmt.Sprintf(`<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>%s</Content><MsgId>%d</MsgId></xml>`, content, i+1)
		if _, err := bus.Publish(ctx, mustEvent(t, []byte(raw)), 0); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case s := <-done:
			got[s] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %v, want ok and flaky", got)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for streamMsgs(t, bus, events.DLQStreamName) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := streamMsgs(t, bus, events.DLQStreamName), uint64(2); got != want {
		t.Fatalf("dlq msgs=%d, want %d", got, want)
	}
	mu.Lock()
	if got, want := attempts["never"], 3; got != want {
		t.Errorf("attempts(never)=%d, want %d (MaxDeliver)", got, want)
	}
	if got, want := attempts["bad"], 1; got != want {
		t.Errorf("attempts(bad)=%d, want %d (permanent)", got, want)
	}
	mu.Unlock()
	s, _ := bus.JetStream().Stream(ctx, events.DLQStreamName)
	reasons := map[string]string{}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		reasons[m.Subject] += m.Header.Get(events.HeaderDLQReason) + "|" + m.Header.Get(events.HeaderDLQAttempts) + ";"
	}
	if got := reasons["dlq.wechat."+eventstest.AppID+".msg.text"]; got == "" {
		t.Fatalf("dlq records: %v", reasons)
	}
	for _, want := range []string{"errcode 45015: response out of time limit|1;", "wechat always down|3;"} {
		if r := reasons["dlq.wechat."+eventstest.AppID+".msg.text"]; !strings.Contains(r, want) {
			t.Errorf("dlq reasons %q lack %q", r, want)
		}
	}
	// Everything is acked or terminated: nothing pending.
	waitSettled(t, c)
}

// waitSettled waits until c has nothing pending and nothing waiting for an
// ack, for at most 5 s.
func waitSettled(tb testing.TB, c *events.Consumer) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consumer still has ack pending=%d pending=%d", info.NumAckPending, info.NumPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConsumeBadPayloadIsDeadLettered(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx := context.Background()
	if _, err := bus.JetStream().Publish(ctx, "wechat."+eventstest.AppID+".msg.text", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	c, err := bus.Consume(ctx, events.ConsumerConfig{}, events.Each(func(context.Context, events.Event) error {
		t.Error("handler called for a bad payload")
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for streamMsgs(t, bus, events.DLQStreamName) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("bad payload not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDefaultBackoff(t *testing.T) {
	// A 10-second WeChat outage must neither exhaust 12 attempts nor loop hot.
	var total time.Duration
	n := 0
	for total < 10*time.Second {
		n++
		d := events.DefaultBackoff(n)
		if d < 500*time.Millisecond {
			t.Fatalf("backoff(%d)=%v: hot loop", n, d)
		}
		total += d
	}
	if n >= 12 {
		t.Fatalf("a 10 s outage takes %d attempts, want < 12", n)
	}
	if got, want := events.DefaultBackoff(100), 30*time.Second; got != want {
		t.Fatalf("backoff cap=%v, want %v", got, want)
	}
}
