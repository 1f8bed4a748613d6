package events_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

// The workers' filter is exactly the pushes that get a reply, plus
// unsubscribe: every fixture is in it or out of it as the workers need.
func TestWorkerSubjectsMatchTheFixtures(t *testing.T) {
	subjects := events.WorkerSubjects("wxA")
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	in := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Parse("wxA", raw, now)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := e.WantsReply() || (e.MsgType == "event" && e.Event == "unsubscribe")
		if got := slices.Contains(subjects, e.Subject()); got != want {
			t.Errorf("%s: subject %s in the workers' filter=%v, want %v", f, e.Subject(), got, want)
		}
		in[e.Subject()] = in[e.Subject()] || want
	}
	for _, s := range subjects {
		if !in[s] {
			t.Errorf("filter subject %s matches no fixture", s)
		}
	}
	// The appid is made one subject token, as in Event.Subject.
	if got, want := events.WorkerSubjects("wx.a*")[0], "wechat.wx_a_.msg.text"; got != want {
		t.Errorf("WorkerSubjects(wx.a*)[0]=%q, want %q", got, want)
	}
}

func locationXML(openid string, ts int) []byte {
	return fmt.Appendf(nil, `<xml><ToUserName>gh</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>23.1</Latitude><Longitude>113.3</Longitude><Precision>119</Precision></xml>`, openid, ts)
}

// An upgrade: the workers' durable consumer was made by the previous
// version with one filter for every subject of the account, and events
// were stored before the workers started. At start it is updated in place
// to the workers' subjects: the LOCATION and VIEW events stay in WECHAT and
// reach an operator's own unfiltered consumer, but are never delivered to
// the workers, and do not count in their lag.
func TestConsumeUpdatesAnUnfilteredConsumerInPlace(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx := context.Background()
	js := bus.JetStream()
	old, err := js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{
		Durable:       events.DefaultDurable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		FilterSubject: "wechat." + eventstest.AppID + ".>",
	})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := old.Info(ctx); err != nil || len(info.Config.FilterSubjects) != 0 {
		t.Fatalf("old consumer: %+v %v", info, err)
	}
	ops, err := js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{
		Durable:   "operator",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	view := []byte(`<xml><ToUserName>gh</ToUserName><FromUserName>o2</FromUserName><CreateTime>5</CreateTime><MsgType>event</MsgType><Event>VIEW</Event><EventKey>https://example.com/</EventKey></xml>`)
	for _, raw := range [][]byte{
		locationXML("o1", 1700000000),
		scanXML("o1", 1700000001, "EAN_13,6901234567892"),
		view,
		locationXML("o1", 1700000002),
	} {
		if _, err := bus.Publish(ctx, mustEvent(t, raw), 0); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var got []string
	c, err := bus.Consume(ctx, events.ConsumerConfig{}, events.Each(func(_ context.Context, e events.Event) error {
		mu.Lock()
		got = append(got, e.Subject())
		mu.Unlock()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Config.FilterSubjects, events.WorkerSubjects(eventstest.AppID); !slices.Equal(got, want) {
		t.Fatalf("workers' consumer filter=%v, want %v", got, want)
	}
	if info.Config.FilterSubject != "" {
		t.Fatalf("old single filter kept: %q", info.Config.FilterSubject)
	}
	// After the scan, one more LOCATION: still not delivered.
	if _, err := bus.Publish(ctx, mustEvent(t, locationXML("o1", 1700000003)), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err = c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Consumer == 1 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers' consumer: delivered=%d acked=%d ack pending=%d", info.Delivered.Consumer, info.AckFloor.Consumer, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info.Delivered.Consumer != 1 || info.NumPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("workers' consumer: delivered=%d pending=%d redelivered=%d, want 1, 0, 0",
			info.Delivered.Consumer, info.NumPending, info.NumRedelivered)
	}
	mu.Lock()
	if want := []string{"wechat." + eventstest.AppID + ".event.scancode_waitmsg"}; !slices.Equal(got, want) {
		t.Errorf("the workers were handed %v, want %v", got, want)
	}
	mu.Unlock()
	if got, want := streamMsgs(t, bus, events.StreamName), uint64(5); got != want {
		t.Fatalf("WECHAT msgs=%d, want %d: everything is stored", got, want)
	}
	st, err := bus.Status(ctx, events.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.AckPending != 0 {
		t.Fatalf("status lag=%d ack pending=%d, want 0, 0", st.Pending, st.AckPending)
	}

	// The operator's consumer without a filter sees all five, in order.
	oinfo, err := ops.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := oinfo.NumPending, uint64(5); got != want {
		t.Fatalf("operator's consumer pending=%d, want %d", got, want)
	}
	batch, err := ops.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for m := range batch.Messages() {
		subjects = append(subjects, m.Subject())
		_ = m.Ack()
	}
	p := "wechat." + eventstest.AppID + ".event."
	if want := []string{p + "location", p + "scancode_waitmsg", p + "view", p + "location", p + "location"}; !slices.Equal(subjects, want) {
		t.Fatalf("operator's consumer got %v, want %v", subjects, want)
	}
}

// A consumer may name its own subjects (an operator's tool built on Consume).
func TestConsumeWithChosenSubjects(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx := context.Background()
	got := make(chan string, 4)
	c, err := bus.Consume(ctx, events.ConsumerConfig{
		Durable:  "locations",
		Subjects: []string{"wechat." + eventstest.AppID + ".event.location"},
	}, events.Each(func(_ context.Context, e events.Event) error {
		got <- e.Event
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, raw := range [][]byte{scanXML("o1", 1, "QR_CODE,x"), locationXML("o1", 2)} {
		if _, err := bus.Publish(ctx, mustEvent(t, raw), 0); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-got:
		if e != "LOCATION" {
			t.Fatalf("delivered %q, want LOCATION", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LOCATION not delivered")
	}
	select {
	case e := <-got:
		t.Fatalf("also delivered %q", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// The idle release runs once after a busy period, not before the first
// delivery, not while events flow, and again after the next burst.
func TestConsumeReleasesMemoryOnceIdle(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx := context.Background()
	var releases atomic.Int32
	handled := make(chan struct{}, 16)
	c, err := bus.Consume(ctx, events.ConsumerConfig{
		IdleRelease: time.Second,
		Release:     func() { releases.Add(1) },
	}, events.Each(func(context.Context, events.Event) error {
		handled <- struct{}{}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	time.Sleep(1500 * time.Millisecond)
	if n := releases.Load(); n != 0 {
		t.Fatalf("released %d times before any delivery, want 0", n)
	}
	burst := func(from int) {
		t.Helper()
		for i := range 5 {
			if _, err := bus.Publish(ctx, mustEvent(t, scanXML("o1", from+i, "QR_CODE,x")), 0); err != nil {
				t.Fatal(err)
			}
			<-handled
			time.Sleep(50 * time.Millisecond) // events flow: well inside IdleRelease
			if n := releases.Load(); n != int32(from/100) {
				t.Fatalf("released %d times while events flow, want %d", n, from/100)
			}
		}
	}
	waitReleases := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for releases.Load() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // and no more while idle
		if n := releases.Load(); n != want {
			t.Fatalf("released %d times, want %d", n, want)
		}
	}
	burst(0)
	waitReleases(1)
	burst(100)
	waitReleases(2)
}

// ConsumeStaged: a batch's finish runs while the next batch runs its first
// stage, and a batch is acked only once its finish has returned.
func TestConsumeStagedOverlapsFinishWithTheNextBatch(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu        sync.Mutex
		order     []string // first stages, in the order they ran
		release   = make(chan struct{})
		secondRan = make(chan struct{})
		finished  = make(chan string, 10)
	)
	h := func(_ context.Context, evs []events.Event) func() []error {
		mu.Lock()
		for _, e := range evs {
			order = append(order, e.Content)
		}
		mu.Unlock()
		if evs[0].Content == "second" {
			close(secondRan)
		}
		return func() []error {
			if evs[0].Content == "first" {
				<-release // the first batch's finish waits for the test
			}
			for _, e := range evs {
				finished <- e.Content
			}
			return make([]error, len(evs))
		}
	}
	c, err := bus.ConsumeStaged(ctx, events.ConsumerConfig{}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	text := func(content string, id int) events.Event {
		return mustEvent(t, fmt.Appendf(nil, `<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>%s</Content><MsgId>%d</MsgId></xml>`, content, id))
	}
	if _, err := bus.Publish(ctx, text("first", 1), 0); err != nil {
		t.Fatal(err)
	}
	// Wait until the first batch is in its finish, then send the second.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first batch never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := bus.Publish(ctx, text("second", 2), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-secondRan:
	case <-time.After(5 * time.Second):
		t.Fatal("the second batch's first stage waited for the first batch's finish")
	}
	if got := <-finished; got != "second" {
		t.Fatalf("finished %q first, want the second batch (the first is held)", got)
	}
	// The second batch is acked once its finish returned; the held first
	// one is not, until its own finish returns.
	deadline = time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 {
			t.Fatal("the first batch was acked while its finish still ran")
		}
		if info.NumAckPending == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ack pending=%d, want the second batch acked", info.NumAckPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if got := <-finished; got != "first" {
		t.Fatalf("finished %q, want first", got)
	}
	waitSettled(t, c)
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(order, ","), "first,second"; got != want {
		t.Fatalf("first stages ran %s, want %s", got, want)
	}
}

// First stages run one at a time and in delivery order, however quickly
// batches come and however long finishes take.
func TestConsumeStagedFirstStagesAreSerialAndOrdered(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 30
	var (
		mu      sync.Mutex
		order   []string
		inFirst atomic.Int32
		overlap atomic.Bool
		done    = make(chan struct{}, n)
	)
	h := func(_ context.Context, evs []events.Event) func() []error {
		if inFirst.Add(1) > 1 {
			overlap.Store(true)
		}
		time.Sleep(2 * time.Millisecond) // widen any overlap
		mu.Lock()
		for _, e := range evs {
			order = append(order, e.Content)
		}
		mu.Unlock()
		inFirst.Add(-1)
		return func() []error {
			time.Sleep(3 * time.Millisecond)
			for range evs {
				done <- struct{}{}
			}
			return make([]error, len(evs))
		}
	}
	c, err := bus.ConsumeStaged(ctx, events.ConsumerConfig{BatchSize: 1}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var want []string
	for i := range n {
		content := fmt.Sprintf("m%02d", i)
		want = append(want, content)
		raw := fmt.Appendf(nil, `<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>%s</Content><MsgId>%d</MsgId></xml>`, content, i+1)
		if _, err := bus.Publish(ctx, mustEvent(t, raw), 0); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("not every event was handled")
		}
	}
	if overlap.Load() {
		t.Fatal("two first stages ran at once")
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(order, ","), strings.Join(want, ","); got != want {
		t.Fatalf("first stages ran\n%s\nwant\n%s", got, want)
	}
}

// A panic in either stage fails the batch's events (they are retried), and
// the consumer keeps going.
func TestConsumeStagedPanicsAreRetried(t *testing.T) {
	bus := eventstest.MustBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	done := make(chan struct{})
	h := func(_ context.Context, evs []events.Event) func() []error {
		switch calls.Add(1) {
		case 1:
			panic("first stage")
		case 2:
			return func() []error { panic("finish") }
		}
		return func() []error {
			close(done)
			return make([]error, len(evs))
		}
	}
	c, err := bus.ConsumeStaged(ctx, events.ConsumerConfig{Backoff: func(int) time.Duration { return 10 * time.Millisecond }}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if _, err := bus.Publish(ctx, mustEvent(t, scanXML("o1", 1700000000, "EAN_13,6901234567892")), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("handled %d times, want a third that succeeds", calls.Load())
	}
}
