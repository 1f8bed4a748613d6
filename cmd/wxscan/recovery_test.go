package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

// readyzStatus returns the status of GET /readyz on a process's HTTP address.
func readyzStatus(tb testing.TB, addr string) int {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		tb.Fatalf("readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pollUntil polls cond every 50 ms until it holds or d has passed, and
// reports how long it took.
func pollUntil(tb testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			tb.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestCallbackRecoversWhenNATSReturns is SPEC §8's "NATS unreachable" with
// an external NATS: while it is down the callback answers 503 within 2 s
// and /readyz says not ready; when a server comes back on the same address
// and store, the same callback process (not restarted) becomes ready again
// by itself and stores events, and WeChat's retries of the requests that
// got 503 are stored once each.
func TestCallbackRecoversWhenNATSReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a NATS server")
	}
	natsDir, listen := t.TempDir(), eventstest.FreeAddrs(t, 1)[0]
	srv := eventstest.MustServerOn(t, natsDir, listen)

	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	cfg.NATSURL = srv.ClientURL()
	m := MustRunMain(t, cfg)
	defer m.Close() // before the second server stops: Close drains
	addr := m.HTTPAddr()
	sim := simFor(m, "plain")
	ctx := context.Background()
	push := func(i int) wechatsim.Request {
		t.Helper()
		req, err := sim.Build(wechatsim.Push{Kind: "location", OpenID: fmt.Sprintf("oRecover%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	send := func(req wechatsim.Request) wechatsim.Result {
		t.Helper()
		res, err := sim.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	if res := send(push(0)); res.Status != http.StatusOK || res.Body != "success" {
		t.Fatalf("before the outage: %d %q", res.Status, res.Body)
	}
	if got, want := readyzStatus(t, addr), http.StatusOK; got != want {
		t.Fatalf("readyz before the outage=%d, want %d", got, want)
	}

	srv.Close()
	var refused []wechatsim.Request
	for i := 1; i <= 3; i++ {
		req := push(i)
		start := time.Now()
		res := send(req)
		if got, want := res.Status, http.StatusServiceUnavailable; got != want {
			t.Fatalf("push %d while NATS is down=%d %q, want %d", i, got, res.Body, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("push %d while NATS is down took %v, want < 2s", i, d)
		}
		refused = append(refused, req)
		start = time.Now()
		if got, want := readyzStatus(t, addr), http.StatusServiceUnavailable; got != want {
			t.Fatalf("readyz while NATS is down=%d, want %d", got, want)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("readyz while NATS is down took %v, want an answer at once", d)
		}
	}

	restart := time.Now()
	eventstest.MustServerOn(t, natsDir, listen)
	took := pollUntil(t, 10*time.Second, "readyz 200 after NATS returned", func() bool {
		return readyzStatus(t, addr) == http.StatusOK
	})
	t.Logf("ready again %v after the server restarted", took.Round(time.Millisecond))
	for i := 4; i <= 6; i++ {
		if res := send(push(i)); res.Status != http.StatusOK || res.Body != "success" {
			t.Fatalf("push %d after recovery: %d %q", i, res.Status, res.Body)
		}
	}
	// WeChat retries what got 503, with the very same request.
	for i, req := range refused {
		if res := send(req); res.Status != http.StatusOK || res.Body != "success" {
			t.Fatalf("retry of refused push %d: %d %q", i+1, res.Status, res.Body)
		}
	}
	t.Logf("recovered and stored within %v of the restart", time.Since(restart).Round(time.Millisecond))
	// One event each: before, the three retried, the three after.
	if got, want := streamMsgs(t, m), uint64(7); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
}

// TestServeWaitsForAFormingCluster: a process started while its NATS
// cluster is still forming (one of three nodes up: no JetStream quorum)
// keeps trying to create the streams for up to 10 s instead of exiting.
func TestServeWaitsForAFormingCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	addrs := eventstest.FreeAddrs(t, 6)
	clients, routes := addrs[:3], addrs[3:]
	node := func(i int) {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, "nats://"+r)
			}
		}
		srv, err := events.StartServer(events.ServerConfig{StoreDir: t.TempDir(), Listen: clients[i],
			Name: fmt.Sprintf("n%d", i), ClusterName: "forming", ClusterListen: routes[i], Routes: others})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
	}
	node(0)
	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	cfg.NATSURL = "nats://" + clients[0]
	cfg.StreamReplicas = 3
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.DiscardHandler)
	started := make(chan error, 1)
	go func() { started <- m.Run(context.Background()) }()
	t.Cleanup(func() { m.Close() })
	select {
	case err := <-started:
		t.Fatalf("serve returned while the cluster had one node of three: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	node(1)
	node(2)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve not ready 15 s after the cluster got its nodes")
	}
	if got, want := readyzStatus(t, m.HTTPAddr()), http.StatusOK; got != want {
		t.Fatalf("readyz=%d, want %d", got, want)
	}
}
