// Package eventstest starts real embedded NATS servers and buses for tests
// of any package. Nothing here is mocked: it is nats-server with JetStream on
// a temporary directory.
package eventstest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
)

// AppID is the account id used by MustBus.
const AppID = "wxtest0000000001"

// MustServer starts an embedded NATS server with JetStream under tb's temp
// dir, listening on a random loopback port, and stops it at cleanup.
func MustServer(tb testing.TB) *events.Server {
	tb.Helper()
	return MustServerAt(tb, tb.TempDir())
}

// MustServerAt is MustServer with a chosen store dir (to restart on the same
// data).
func MustServerAt(tb testing.TB, dir string) *events.Server {
	tb.Helper()
	srv, err := events.StartServer(events.ServerConfig{StoreDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// MustServerOn starts an embedded NATS server with JetStream on store dir
// dir, listening on listen (a fixed host:port, so that a test can stop it
// and start it again where its clients expect it), and stops it at cleanup.
// Stopping it earlier with Close is fine.
func MustServerOn(tb testing.TB, dir, listen string) *events.Server {
	tb.Helper()
	srv, err := events.StartServer(events.ServerConfig{StoreDir: dir, Listen: listen})
	if err != nil {
		tb.Fatalf("start nats on %s: %v", listen, err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// MustBus connects a Bus for AppID to srv (started with MustServer when
// nil), creates the streams, and closes it at cleanup.
func MustBus(tb testing.TB, srv *events.Server) *events.Bus {
	tb.Helper()
	if srv == nil {
		srv = MustServer(tb)
	}
	bus, err := events.Connect(context.Background(), events.Options{
		URL:            srv.ClientURL(),
		AppID:          AppID,
		Name:           tb.Name(),
		PublishTimeout: time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatalf("connect bus: %v", err)
	}
	tb.Cleanup(func() { bus.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	return bus
}
