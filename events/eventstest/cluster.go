package eventstest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxscan/wxscan/events"
)

// FreeAddrs returns n distinct loopback host:port addresses that were free
// a moment ago (they are held together, then released), e.g. for the route
// ports of a cluster whose nodes must know each other's before they start.
// Another process may take one in between; on a test machine that is rare.
func FreeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	addrs := make([]string, n)
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("reserve a port: %v", err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// WaitClusterFormed waits up to d until the JetStream cluster that bus is
// connected to can place a stream with n replicas, that is until it has a
// meta leader and n nodes that have joined (a meta leader alone is not
// enough: creating a replicated stream before the others have joined fails
// with "no suitable peers for placement").
func WaitClusterFormed(tb testing.TB, bus *events.Bus, n int, d time.Duration) {
	tb.Helper()
	js := bus.JetStream()
	cfg := jetstream.StreamConfig{Name: "EVENTSTEST_PROBE", Subjects: []string{"eventstest.probe"},
		Storage: jetstream.MemoryStorage, Replicas: n}
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.CreateStream(ctx, cfg)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("JetStream cluster of %d not formed after %v: %v", n, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, cfg.Name); err != nil {
		tb.Fatalf("delete the probe stream: %v", err)
	}
}
