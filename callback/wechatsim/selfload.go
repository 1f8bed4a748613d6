package wechatsim

import (
	"context"
	"fmt"
	"io"
	"time"
)

// SelfLoad is a load run against a wxscan of its own. It holds no ratio
// against a baseline: its Go client shares the cores with the server and
// cannot saturate a fast one, so such a ratio would overstate wxscan. The
// benchmark in bench/ (wrk) makes that comparison.
type SelfLoad struct {
	Callback   LoadReport `json:"callback"`
	StreamMsgs uint64     `json:"stream_msgs"`
	// With Target.RecordedScans: scans recorded, and per second from the
	// start of the load until the last one was recorded.
	ScansChecked bool    `json:"scans_checked,omitempty"`
	Scans        int     `json:"scans_recorded,omitempty"`
	ScansPerSec  float64 `json:"scans_per_sec,omitempty"`
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
	// RecordWait bounds that wait; default 60 s.
	RecordWait time.Duration
}

// RunSelfLoad runs lc against target with the Sim newSim returns for its
// URL, and measures the stream and (with RecordedScans) the scans recorded.
func RunSelfLoad(ctx context.Context, newSim func(url string) *Sim, lc LoadConfig, target Target) (SelfLoad, error) {
	var out SelfLoad
	var err error
	start := time.Now()
	if out.Callback, err = newSim(target.URL).Load(ctx, lc); err != nil {
		return out, err
	}
	if out.StreamMsgs, err = target.StreamMsgs(ctx); err != nil {
		return out, err
	}
	if target.RecordedScans != nil {
		out.ScansChecked = true
		// Wait for the workers to record every accepted scan.
		wait := target.RecordWait
		if wait <= 0 {
			wait = 60 * time.Second
		}
		deadline := time.Now().Add(wait)
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

// WriteText prints the run for a terminal; kind and mode name the pushes
// sent.
func (r SelfLoad) WriteText(w io.Writer, kind, mode string) {
	fmt.Fprintf(w, "wxscan (%s, %s): %s\n", kind, mode, r.Callback)
	fmt.Fprintf(w, "stream messages: %d for %d accepted events\n", r.StreamMsgs, r.Callback.OK)
	if r.ScansChecked {
		fmt.Fprintf(w, "scans recorded: %d for %d accepted, %.0f/s end to end (callback accepted %.0f/s)\n",
			r.Scans, r.Callback.OK, r.ScansPerSec, float64(r.Callback.OK)/r.Callback.Elapsed.Seconds())
	}
}

// Check fails unless the run had no errors, the stream holds exactly one
// message per accepted event and, when scans were checked, one scan was
// recorded per accepted event.
func (r SelfLoad) Check() error {
	if r.StreamMsgs != uint64(r.Callback.OK) || r.Callback.Errors > 0 {
		return fmt.Errorf("expected no errors and one stream message per accepted event")
	}
	if r.ScansChecked && r.Scans != r.Callback.OK {
		return fmt.Errorf("expected one scan recorded per accepted event, got %d for %d", r.Scans, r.Callback.OK)
	}
	return nil
}
