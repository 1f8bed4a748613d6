package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// A child with WXSCAN_TEST_NATS_NODE=name is one node of a NATS cluster
// instead (JetStream under WXSCAN_TEST_NATS_DIR, routes listening on
// WXSCAN_TEST_NATS_CLUSTER, to WXSCAN_TEST_NATS_ROUTES): it prints its client
// URL on its first line and runs until SIGTERM. A node in a process of its
// own can be killed with SIGKILL, which is a crash; an embedded server's
// Shutdown would first hand its raft leaderships over.
func init() {
	name := os.Getenv("WXSCAN_TEST_NATS_NODE")
	if name == "" {
		return
	}
	srv, err := events.StartServer(events.ServerConfig{
		StoreDir: os.Getenv("WXSCAN_TEST_NATS_DIR"), Listen: "127.0.0.1:0", Name: name,
		ClusterName: "wxscan-test", ClusterListen: os.Getenv("WXSCAN_TEST_NATS_CLUSTER"),
		Routes: strings.Split(os.Getenv("WXSCAN_TEST_NATS_ROUTES"), ","),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "nats node %s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("nats node ready %s\n", srv.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Close()
	os.Exit(0)
}

// natsNode is a cluster node in a child process.
type natsNode struct {
	name string
	cmd  *exec.Cmd
	url  string // client URL
}

// startNATSCluster starts an n-node JetStream cluster (routes on loopback),
// one child process per node, and returns once it can place a stream on
// every node. The nodes are killed at cleanup.
func startNATSCluster(t *testing.T, n int) []*natsNode {
	t.Helper()
	routeAddrs := eventstest.FreeAddrs(t, n)
	nodes := make([]*natsNode, n)
	started := make(chan struct{}, n)
	for i := range n {
		var routes []string
		for j, a := range routeAddrs {
			if j != i {
				routes = append(routes, "nats-route://"+a)
			}
		}
		nd := &natsNode{name: fmt.Sprintf("n%d", i+1), cmd: exec.Command(os.Args[0])}
		nd.cmd.Env = append(os.Environ(), "WXSCAN_TEST_NATS_NODE="+nd.name, "WXSCAN_TEST_NATS_DIR="+t.TempDir(),
			"WXSCAN_TEST_NATS_CLUSTER="+routeAddrs[i], "WXSCAN_TEST_NATS_ROUTES="+strings.Join(routes, ","))
		nd.cmd.Stderr = os.Stderr
		stdout, err := nd.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.cmd.Process.Kill(); nd.cmd.Wait() })
		nodes[i] = nd
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if u, ok := strings.CutPrefix(sc.Text(), "nats node ready "); ok {
					nd.url = u
					started <- struct{}{}
				}
			}
		}()
	}
	for range n {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("NATS cluster nodes did not start")
		}
	}
	eventstest.WaitClusterFormed(t, clusterBus(t, nodes), n, 30*time.Second)
	return nodes
}

// natsURLs is the nodes' client URLs as WXSCAN_NATS_URL takes them.
func natsURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, nd := range nodes {
		urls[i] = nd.url
	}
	return strings.Join(urls, ",")
}

// clusterBus connects the test itself to the cluster, to look at it.
func clusterBus(t *testing.T, nodes []*natsNode) *events.Bus {
	t.Helper()
	bus, err := events.Connect(context.Background(), events.Options{URL: natsURLs(nodes), AppID: testAppID, Name: "test",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus
}

// clusterLeaders returns the names of the nodes leading the WECHAT stream and the
// workers' consumer, "?" for one it cannot tell (e.g. during an election).
func clusterLeaders(bus *events.Bus) (stream, consumer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stream, consumer = "?", "?"
	st, err := bus.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		return stream, consumer
	}
	if info := st.CachedInfo(); info.Cluster != nil {
		stream = info.Cluster.Leader
	}
	c, err := st.Consumer(ctx, "workers")
	if err != nil {
		return stream, consumer
	}
	if info := c.CachedInfo(); info.Cluster != nil {
		consumer = info.Cluster.Leader
	}
	return stream, consumer
}

// moveConsumerLeader hands the leadership of the workers' consumer to node
// name (a stepdown with a preferred placement).
func moveConsumerLeader(t *testing.T, bus *events.Bus, name string) {
	t.Helper()
	subject := "$JS.API.CONSUMER.LEADER.STEPDOWN." + events.StreamName + ".workers"
	pollUntil(t, 20*time.Second, "the workers' consumer led by "+name, func() bool {
		if _, c := clusterLeaders(bus); c == name {
			return true
		}
		_, _ = bus.Conn().Request(subject, []byte(`{"placement":{"preferred":"`+name+`"}}`), 2*time.Second)
		time.Sleep(500 * time.Millisecond) // the election
		return false
	})
}

// wxProc is a wxscan child process started by startWxscan.
type wxProc struct {
	name  string
	cmd   *exec.Cmd
	addr  string // HTTP address
	ready chan string

	mu      sync.Mutex
	partial []byte
	log     []string
}

// Write takes the child's standard error: it keeps the log lines and
// spots the ready line.
func (p *wxProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		p.log = append(p.log, line)
		if j := strings.Index(line, `"addr":"`); j >= 0 && strings.Contains(line, "wxscan ready") {
			rest := line[j+len(`"addr":"`):]
			select {
			case p.ready <- rest[:strings.Index(rest, `"`)]:
			default:
			}
		}
	}
}

// startWxscan starts `wxscan serve` as a child process on dir with the test
// settings and env over them, and waits until it is ready. Its log is
// printed when the test fails; it is killed at cleanup.
func startWxscan(t *testing.T, name, dir string, env ...string) *wxProc {
	t.Helper()
	p := &wxProc{name: name, cmd: exec.Command(os.Args[0], "serve"), ready: make(chan string, 1)}
	p.cmd.Env = append(os.Environ(), "WXSCAN_TEST_CHILD=1",
		"WXSCAN_ADDR=127.0.0.1:0", "WXSCAN_DATA_DIR="+dir, "WXSCAN_NATS_LISTEN=off",
		"WXSCAN_APPID="+testAppID, "WXSCAN_TOKEN="+testToken, "WXSCAN_AES_KEY="+testAESKey,
		"WXSCAN_APPSECRET=s", "WXSCAN_PUBLIC_URL=http://127.0.0.1")
	p.cmd.Env = append(p.cmd.Env, env...) // later values win
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s log:\n%s", p.name, strings.Join(p.log, "\n"))
			p.mu.Unlock()
		}
	})
	select {
	case p.addr = <-p.ready:
		return p
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not become ready", name)
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *wxProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", p.name)
	}
}

// exportedScans reads a stocktake's scans through the admin API.
func exportedScans(t *testing.T, addr, adminToken, stocktake string) []store.Scan {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/admin/stocktakes/"+stocktake+"/scans?format=json", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s", resp.Status)
	}
	var scans []store.Scan
	if err := json.NewDecoder(resp.Body).Decode(&scans); err != nil {
		t.Fatalf("export: %v", err)
	}
	return scans
}

// TestClusterNodeLossLosesAndDoublesNothing is issue 4's cluster drill: a
// 3-node JetStream cluster (nats-server three times, routes on loopback),
// two callback processes and one workers process, with the streams at 3
// replicas. Scans go through both callbacks from several senders at once,
// and the node that leads both the WECHAT stream and the workers' consumer
// is killed (SIGKILL: no leadership hand-over) while the load runs. A 503
// is retried with the very same request, as WeChat does, so every scan must
// end up answered 200; every scan answered 200 must be recorded exactly
// once, nothing else may be recorded, and the stream holds one message per
// scan.
func TestClusterNodeLossLosesAndDoublesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and child processes")
	}
	start := time.Now()
	nodes := startNATSCluster(t, 3)
	t.Logf("NATS cluster up in %v", time.Since(start).Round(time.Millisecond))

	// Two bound staff who may scan, and an open stocktake.
	dir := t.TempDir()
	openids := []string{"oClusterA", "oClusterB"}
	db, err := store.Open(dbPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ImportStaff(devStaff); err != nil {
		t.Fatal(err)
	}
	for i, o := range openids {
		if _, err := db.Bind(o, devStaff[i].EmployeeNo, "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.OpenStocktake("cluster drill", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	fake := httptest.NewServer(fakewechat.New(fakewechat.Config{}))
	defer fake.Close()
	const adminToken = "clusteradmin"
	env := []string{"WXSCAN_NATS_URL=" + natsURLs(nodes), "WXSCAN_STREAM_REPLICAS=3",
		"WXSCAN_API_BASE=" + fake.URL, "WXSCAN_OAUTH_BASE=" + fake.URL, "WXSCAN_ADMIN_TOKEN=" + adminToken}
	workers := startWxscan(t, "workers", dir, append(env, "WXSCAN_ROLES=workers")...)
	var sims []*wechatsim.Sim
	for i := range 2 {
		cb := startWxscan(t, fmt.Sprintf("callback%d", i+1), t.TempDir(), append(env, "WXSCAN_ROLES=callback")...)
		// Every field set: a Sim fills unset ones on first use, which races
		// when that first use is concurrent.
		sims = append(sims, &wechatsim.Sim{URL: "http://" + cb.addr + "/wechat/callback", Token: testToken, AppID: testAppID,
			Mode: wechatsim.ModePlain, Account: "gh_cluster", Client: &http.Client{Timeout: 10 * time.Second}, Now: time.Now})
	}
	// The worst node to lose leads both the stream and the consumer.
	bus := clusterBus(t, nodes)
	var victim *natsNode
	pollUntil(t, 10*time.Second, "a WECHAT leader", func() bool {
		streamLeader, _ := clusterLeaders(bus)
		for _, nd := range nodes {
			if nd.name == streamLeader {
				victim = nd
			}
		}
		return victim != nil
	})
	moveConsumerLeader(t, bus, victim.name)
	t.Logf("wxscan processes up at %v; %s leads WECHAT and the workers' consumer",
		time.Since(start).Round(time.Millisecond), victim.name)

	// The load: each sender sends its own scans, alternating callbacks and
	// staff, and retries a scan with the same request until it is answered
	// 200, as WeChat would (WeChat gives up after three retries; the drill
	// does not, so that every scan must end up recorded).
	const senders = 4
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // code -> answered 200
		answers  = map[string]int{}  // status (or "error") -> count
		stopLoad atomic.Bool
		killedAt atomic.Int64 // unix nanos; 0 until the kill
		// firstOKAfterKill is when a request sent after the kill was first
		// answered 200.
		firstOKAfterKill atomic.Int64
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := 0; !stopLoad.Load(); i++ {
				code := fmt.Sprintf("CODE_128,CL-%d-%05d", s, i)
				sim := sims[(s+i)%len(sims)]
				req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: openids[(s+i/2)%len(openids)], Code: code})
				if err != nil {
					t.Error(err)
					return
				}
				deadline := time.Now().Add(30 * time.Second)
				for {
					sent := time.Now().UnixNano()
					res, err := sim.Send(ctx, req)
					status := "error"
					if err == nil {
						status = fmt.Sprint(res.Status)
					}
					mu.Lock()
					answers[status]++
					if status == "200" {
						accepted[code] = true
					}
					mu.Unlock()
					if status == "200" {
						if k := killedAt.Load(); k != 0 && sent > k {
							firstOKAfterKill.CompareAndSwap(0, time.Now().UnixNano())
						}
						break
					}
					if err == nil && res.Status != http.StatusServiceUnavailable {
						t.Errorf("scan %s: %d %q, want 200 or 503", code, res.Status, res.Body)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("scan %s: no 200 in 30s of retries (last: %s %v)", code, status, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	defer func() { // also when the test fails early: no sender outlives it
		stopLoad.Store(true)
		wg.Wait()
	}()

	time.Sleep(2 * time.Second) // load on a healthy cluster
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	killedAt.Store(time.Now().UnixNano())
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	t.Logf("killed %s after %d scans accepted", victim.name, before)
	// Keep sending until a scan sent after the kill is answered 200, and for
	// 2 s more.
	pollUntil(t, 30*time.Second, "a scan sent after the kill answered 200", func() bool {
		return firstOKAfterKill.Load() != 0
	})
	failover := time.Duration(firstOKAfterKill.Load() - killedAt.Load())
	time.Sleep(2 * time.Second)
	stopLoad.Store(true)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	streamLeader, consumerLeader := clusterLeaders(bus)
	t.Logf("load done: %d scans accepted (%d before the kill); first 200 %v after the kill; answers %v; WECHAT now led by %s, the consumer by %s",
		len(accepted), before, failover.Round(time.Millisecond), answers, streamLeader, consumerLeader)

	// Wait until the workers have recorded every accepted scan. Events the
	// dead node had delivered without seeing their acks come back after the
	// consumer's AckWait (30 s after the kill at most).
	took := pollUntil(t, 40*time.Second, "every accepted scan recorded", func() bool {
		return len(exportedScans(t, workers.addr, adminToken, st.ID)) >= len(accepted)
	})
	t.Logf("all recorded %v after the load ended", took.Round(time.Millisecond))
	// The retries of requests that got 503 were stored once too: JetStream's
	// dedupe on the event id held across the leader change.
	stream, err := bus.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stream.CachedInfo().State.Msgs, uint64(len(accepted)); got != want {
		t.Errorf("WECHAT holds %d messages, want %d (one per scan)", got, want)
	}

	// The store itself, once the workers have stopped: every accepted scan
	// exactly once, nothing that was not accepted.
	workers.stop(t)
	db, err = store.Open(dbPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, sc := range scans {
		seen[sc.CodeType+","+sc.Code]++
	}
	for code, n := range seen {
		if n != 1 {
			t.Errorf("scan %s recorded %d times", code, n)
		}
		if !accepted[code] {
			t.Errorf("scan %s recorded but never answered 200", code)
		}
	}
	for code := range accepted {
		if seen[code] == 0 {
			t.Errorf("scan %s answered 200 but not recorded", code)
		}
	}
	if got, want := len(scans), len(accepted); got != want {
		t.Fatalf("scans recorded=%d, want %d (one per accepted scan)", got, want)
	}
	t.Logf("%d scans recorded once each; %v in all", len(scans), time.Since(start).Round(time.Millisecond))
}
