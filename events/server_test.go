package events_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

func TestServerTokenRequired(t *testing.T) {
	const token = "a-test-token-0123456789"
	srv, err := events.StartServer(events.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	for name, url := range map[string]string{
		"no token":    srv.ClientURL(),
		"wrong token": strings.Replace(srv.URL(), token, "a-wrong-token-0123456789", 1),
	} {
		nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("%s: err=%v, want an authorization error", name, err)
		}
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
	// In process, the bus authenticates with the server's token.
	bus, err := events.Connect(context.Background(), events.Options{Server: srv, AppID: eventstest.AppID, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx); err != nil {
		t.Fatalf("in-process bus: %v", err)
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nats.token")
	tok, err := events.LoadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Fatalf("token %d characters, want 64", len(tok))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := events.LoadOrCreateToken(path)
	if err != nil || again != tok {
		t.Fatalf("second start: %v, same token %v", err, again == tok)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the token (no temporary left)", len(entries))
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := events.LoadOrCreateToken(path); err == nil {
		t.Fatal("an empty token file was accepted")
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func streamDuplicates(t *testing.T, bus *events.Bus) time.Duration {
	t.Helper()
	st, err := bus.JetStream().Stream(context.Background(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Duplicates
}

func ensure(t *testing.T, srv *events.Server, opts events.Options) *events.Bus {
	t.Helper()
	opts.URL, opts.AppID = srv.ClientURL(), eventstest.AppID
	bus, err := events.Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return bus
}

func TestDuplicateWindow(t *testing.T) {
	if got, want := events.DuplicateWindowFor(300*time.Second), 11*time.Minute; got != want {
		t.Fatalf("window for 300s=%v, want %v", got, want)
	}
	srv := eventstest.MustServer(t)
	quiet := slog.New(slog.DiscardHandler)
	// An existing stream with the old 5-minute window is updated at start.
	old := ensure(t, srv, events.Options{DuplicateWindow: 5 * time.Minute, Logger: quiet})
	if got := streamDuplicates(t, old); got != 5*time.Minute {
		t.Fatalf("window=%v, want 5m", got)
	}
	bus := ensure(t, srv, events.Options{DuplicateWindow: events.DuplicateWindowFor(300 * time.Second), Logger: quiet})
	if got, want := streamDuplicates(t, bus), 11*time.Minute; got != want {
		t.Fatalf("window after start=%v, want %v", got, want)
	}
	// Capped at the stream's max age, with a warning.
	var logs logBuf
	capped := ensure(t, eventstest.MustServer(t), events.Options{MaxAge: 10 * time.Minute,
		DuplicateWindow: events.DuplicateWindowFor(300 * time.Second), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if got, want := streamDuplicates(t, capped), 10*time.Minute; got != want {
		t.Fatalf("capped window=%v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "duplicate window capped") {
		t.Fatalf("no cap warning in %q", logs.String())
	}
}
