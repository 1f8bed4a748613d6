package callback_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
)

func get(tb testing.TB, srv *httptest.Server, path string) (int, string) {
	tb.Helper()
	resp, body := do(tb, "GET", srv.URL+path, nil)
	return resp.StatusCode, body
}

func TestHealthz(t *testing.T) {
	srv := httptest.NewServer(callback.Health(func(context.Context) error { return errors.New("nats down") }))
	t.Cleanup(srv.Close)
	if code, body := get(t, srv, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz=%d %q, want 200 ok", code, body)
	}
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready func(context.Context) error
		want  int
	}{
		{"nil is ready", nil, 200},
		{"ready", func(context.Context) error { return nil }, 200},
		{"not ready", func(context.Context) error { return errors.New("stream WECHAT not found") }, 503},
		{"honours the timeout", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, 503},
		{"ignores the timeout", func(context.Context) error { time.Sleep(3 * time.Second); return nil }, 503},
		{"panics", func(context.Context) error { panic("bug") }, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(callback.Health(tc.ready))
			t.Cleanup(srv.Close)
			start := time.Now()
			code, body := get(t, srv, "/readyz")
			if code != tc.want {
				t.Fatalf("readyz=%d %q, want %d", code, body, tc.want)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Fatalf("answered after %s", d)
			}
		})
	}
}

// TestReadyzSharesOneCheck checks that concurrent probes against a hung
// ready function start one call, not one each.
func TestReadyzSharesOneCheck(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(callback.Health(func(context.Context) error {
		calls.Add(1)
		<-release
		return nil
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, _ := get(t, srv, "/readyz"); code != 503 {
				t.Errorf("readyz=%d, want 503", code)
			}
		})
	}
	wg.Wait()
	if got, want := calls.Load(), int32(1); got != want {
		t.Fatalf("ready called %d times, want %d", got, want)
	}
}
