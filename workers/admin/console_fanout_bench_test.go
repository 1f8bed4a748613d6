//go:build unix

package admin_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkConsoleLiveFanout measures what 20 open live pages of a
// 100,000-scan stocktake cost: each round records a scan, notifies the
// console and waits until all 20 event streams carry the new count. The
// wall time per round is mostly the coalescing interval (at most one update
// per stocktake per 400 ms); cpu-ms/update is this process's CPU time per
// round, the 20 readers' included, which is what the live pages take from
// the scans.
func BenchmarkConsoleLiveFanout(b *testing.B) {
	e := mustConsole(b, token, "")
	st := mustBigStocktake(b, e, benchScans)
	cookie := e.signIn(b)
	var streams []*eventStream
	for range 20 {
		streams = append(streams, e.stream(b, st, cookie))
	}
	for _, s := range streams {
		s.until(b, "first update", fmt.Sprintf(`id="n-scans">%d<`, benchScans))
	}
	time.Sleep(500 * time.Millisecond) // past the first update's interval
	n := benchScans
	cpu := processCPU()
	b.ResetTimer()
	for b.Loop() {
		n++
		e.MustScan(b, st, "oBench", "E000", "EAN_13", "6900000000000", "A-000", fmt.Sprintf("ev-bench-%d", n))
		e.Console.Notify(st)
		for _, s := range streams {
			s.until(b, "update", fmt.Sprintf(`id="n-scans">%d<`, n))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/update")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
