//go:build unix

package callback_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

// benchWriter is a reusable http.ResponseWriter that keeps only the status.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

// benchBus measures the whole callback handler, from ServeHTTP to
// JetStream's acknowledgement, on a real embedded NATS server: b.N distinct
// signed pushes (distinct events, so nothing is a duplicate) prepared
// before the clock starts, 32 in flight as in `simulate load`. Allocations
// include the embedded server's.
func benchBus(b *testing.B, mode, kind string) {
	srv := eventstest.MustServer(b)
	bus, err := events.Connect(b.Context(), events.Options{Server: srv, AppID: testAppID, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bus.Close() })
	if err := bus.EnsureStreams(b.Context()); err != nil {
		b.Fatal(err)
	}
	h, err := callback.NewWeChatHandler(callback.Config{
		AppID: testAppID, Tokens: []string{tokenCur}, AESKeys: []string{keyA},
		Logger: slog.New(slog.DiscardHandler),
	}, bus)
	if err != nil {
		b.Fatal(err)
	}
	sim := &wechatsim.Sim{URL: callback.CallbackPath, Token: tokenCur, AESKey: keyA, AppID: testAppID, Mode: mode}
	reqs := make([]*http.Request, b.N)
	size := 0
	for i := range reqs {
		r, err := sim.Build(wechatsim.Push{Kind: kind, OpenID: fmt.Sprintf("oBench%07d", i), Code: fmt.Sprintf("CODE_128,ITEM-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = httptest.NewRequest(http.MethodPost, r.URL, bytes.NewReader(r.Body))
		size = len(r.Body)
	}
	var next, failed atomic.Int64
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(16) // × GOMAXPROCS goroutines
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			w.code = http.StatusOK
			h.ServeHTTP(w, reqs[next.Add(1)-1])
			if w.code != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	// CPU time per request, of the whole process (the embedded server
	// included): unlike ns/op, it hardly moves when other processes share
	// the cores.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
}

// processCPU is the user and system CPU time the process has used, in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkBusLocationPlain is the LOCATION event in plaintext mode.
func BenchmarkBusLocationPlain(b *testing.B) { benchBus(b, wechatsim.ModePlain, "location") }

// BenchmarkBusLocationSafe is the LOCATION event in safe mode.
func BenchmarkBusLocationSafe(b *testing.B) { benchBus(b, wechatsim.ModeSafe, "location") }
