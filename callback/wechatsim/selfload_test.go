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

// TestRunSelfLoad runs the comparison against a target that counts what it
// accepted as its stream, and one that refuses every push.
func TestRunSelfLoad(t *testing.T) {
	newSim := func(url string) *wechatsim.Sim {
		return &wechatsim.Sim{URL: url, Token: "loadtoken", AppID: "wxloadtest", Mode: wechatsim.ModePlain}
	}
	lc := wechatsim.LoadConfig{Kind: "location", Concurrency: 2, Duration: 100 * time.Millisecond}
	for _, tt := range []struct {
		name    string
		status  int
		wantErr bool
	}{
		{name: "accepting", status: http.StatusOK},
		{name: "refusing", status: http.StatusServiceUnavailable, wantErr: true},
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
			res, err := wechatsim.RunSelfLoad(context.Background(), newSim, lc, target)
			if err != nil {
				t.Fatal(err)
			}
			if res.Baseline.OK == 0 || res.Callback.Requests == 0 || res.Ratio <= 0 {
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
			if !strings.Contains(out.String(), "ratio callback/baseline req/s: ") {
				t.Fatalf("report lacks the ratio:\n%s", out.String())
			}
		})
	}
}
