package wechatsim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// SelfLoad is a measured comparison of the callback with a bare handler.
type SelfLoad struct {
	Baseline   LoadReport `json:"baseline"`
	Callback   LoadReport `json:"callback"`
	Ratio      float64    `json:"ratio"`
	StreamMsgs uint64     `json:"stream_msgs"`
	// With the workers role: scans recorded, and per second from the start
	// of the load until the last one was recorded.
	Scans       int     `json:"scans_recorded,omitempty"`
	ScansPerSec float64 `json:"scans_per_sec,omitempty"`
}

// Target is the wxscan a self-hosted load runs against.
type Target struct {
	// URL is its callback endpoint.
	URL string
	// StreamMsgs reports how many messages its WECHAT stream holds.
	StreamMsgs func(ctx context.Context) (uint64, error)
	// RecordedScans, when set, reports the scans recorded so far in the
	// open stocktake; the run then waits (up to 60 s) until the workers have
	// recorded every accepted scan.
	RecordedScans func() (int, error)
}

// RunSelfLoad runs lc against BareHandler on a loopback port (the
// baseline) and then against target, each with the Sim newSim returns for
// the URL, and measures the ratio, the stream and (with RecordedScans) the
// scans recorded.
func RunSelfLoad(ctx context.Context, newSim func(url string) *Sim, lc LoadConfig, target Target) (SelfLoad, error) {
	var out SelfLoad
	bare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return out, err
	}
	bareSrv := &http.Server{Handler: BareHandler()}
	go bareSrv.Serve(bare)
	defer bareSrv.Close()

	if out.Baseline, err = newSim("http://"+bare.Addr().String()+"/wechat/callback").Load(ctx, lc); err != nil {
		return out, err
	}
	start := time.Now()
	if out.Callback, err = newSim(target.URL).Load(ctx, lc); err != nil {
		return out, err
	}
	if out.Baseline.RPS > 0 {
		out.Ratio = out.Callback.RPS / out.Baseline.RPS
	}
	if out.StreamMsgs, err = target.StreamMsgs(ctx); err != nil {
		return out, err
	}
	if target.RecordedScans != nil {
		// Wait for the workers to record every accepted scan.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			n, err := target.RecordedScans()
			if err != nil {
				return out, err
			}
			if out.Scans = n; out.Scans >= out.Callback.OK {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		out.ScansPerSec = float64(out.Scans) / time.Since(start).Seconds()
	}
	return out, nil
}

// WriteText prints the comparison for a terminal; kind and mode name the
// pushes sent.
func (r SelfLoad) WriteText(w io.Writer, kind, mode string) {
	fmt.Fprintf(w, "baseline (bare net/http):  %s\n", r.Baseline)
	fmt.Fprintf(w, "wxscan callback (%s, %s): %s\n", kind, mode, r.Callback)
	fmt.Fprintf(w, "ratio callback/baseline req/s: %.2f\n", r.Ratio)
	fmt.Fprintf(w, "stream messages: %d for %d accepted events\n", r.StreamMsgs, r.Callback.OK)
	if r.Scans > 0 {
		fmt.Fprintf(w, "scans recorded: %d, %.0f/s end to end (callback accepted %.0f/s): ratio %.2f\n",
			r.Scans, r.ScansPerSec, float64(r.Callback.OK)/r.Callback.Elapsed.Seconds(),
			r.ScansPerSec/(float64(r.Callback.OK)/r.Callback.Elapsed.Seconds()))
	}
}

// Check fails unless the run had no errors and the stream holds exactly
// one message per accepted event.
func (r SelfLoad) Check() error {
	if r.StreamMsgs != uint64(r.Callback.OK) || r.Callback.Errors > 0 {
		return fmt.Errorf("expected no errors and one stream message per accepted event")
	}
	return nil
}
