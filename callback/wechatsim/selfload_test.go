package wechatsim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
)

// TestRunSelfLoad runs a load against a target that counts what it accepted
// as its stream, one that refuses every push, and targets whose workers
// record every accepted scan or miss one.
func TestRunSelfLoad(t *testing.T) {
	newSim := func(url string) *wechatsim.Sim {
		return &wechatsim.Sim{URL: url, Token: "loadtoken", AppID: "wxloadtest", Mode: wechatsim.ModePlain}
	}
	lc := wechatsim.LoadConfig{Kind: "location", Concurrency: 2, Duration: 100 * time.Millisecond}
	for _, tt := range []struct {
		name    string
		status  int
		scans   func(accepted uint64) int // nil: scans not checked
		wantErr bool
	}{
		{name: "accepting", status: http.StatusOK},
		{name: "refusing", status: http.StatusServiceUnavailable, wantErr: true},
		{name: "recording", status: http.StatusOK, scans: func(n uint64) int { return int(n) }},
		{name: "missing a scan", status: http.StatusOK, scans: func(n uint64) int { return int(n) - 1 }, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var accepted atomic.Uint64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tt.status == http.StatusOK {
					accepted.Add(1)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			target := wechatsim.Target{URL: srv.URL + "/wechat/callback",
				StreamMsgs: func(context.Context) (uint64, error) { return accepted.Load(), nil }}
			if tt.scans != nil {
				target.RecordedScans = func() (int, error) { return tt.scans(accepted.Load()), nil }
				target.RecordWait = 200 * time.Millisecond
			}
			res, err := wechatsim.RunSelfLoad(context.Background(), newSim, lc, target)
			if err != nil {
				t.Fatal(err)
			}
			if res.Callback.Requests == 0 || res.ScansChecked != (tt.scans != nil) {
				t.Fatalf("nothing measured: %+v", res)
			}
			if got, want := res.StreamMsgs, uint64(res.Callback.OK); got != want {
				t.Fatalf("stream=%d, want %d", got, want)
			}
			if err := res.Check(); (err != nil) != tt.wantErr {
				t.Fatalf("Check()=%v, want error %v", err, tt.wantErr)
			}
			var out strings.Builder
			res.WriteText(&out, "location", "plain")
			// No ratio against a baseline the load's own client cannot
			// saturate (issue 11).
			for _, banned := range []string{"ratio", "baseline"} {
				if strings.Contains(strings.ToLower(out.String()), banned) {
					t.Fatalf("report mentions %q:\n%s", banned, out.String())
				}
			}
			if got := strings.Contains(out.String(), "scans recorded: "); got != (tt.scans != nil) {
				t.Fatalf("scans line printed=%v:\n%s", got, out.String())
			}
		})
	}
}
