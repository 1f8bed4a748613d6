//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// A child (WXSCAN_TEST_CHILD=1, see TestMain) with WXSCAN_TEST_FSIZE=N runs
// under a file size limit of N bytes: a write or truncate past N fails with
// EFBIG (Go ignores SIGXFSZ), which is how a full disk looks to the process,
// without root or a small file system. SIGUSR1 lifts the limit ("the
// operator freed some space") and the child prints fsizeLifted on stderr.
func init() {
	if os.Getenv("WXSCAN_TEST_CHILD") != "1" || os.Getenv("WXSCAN_TEST_FSIZE") == "" {
		return
	}
	var old syscall.Rlimit
	n, err := strconv.ParseUint(os.Getenv("WXSCAN_TEST_FSIZE"), 10, 64)
	if err == nil {
		err = syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old)
	}
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: old.Max})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "WXSCAN_TEST_FSIZE: %v\n", err)
		os.Exit(3)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			fmt.Fprintf(os.Stderr, "WXSCAN_TEST_FSIZE: lift: %v\n", err)
			return
		}
		fmt.Fprintln(os.Stderr, fsizeLifted)
	}()
}

const fsizeLifted = "test: file size limit lifted"

// serveChild is a `wxscan serve` child process that may fail to start.
type serveChild struct {
	cmd     *exec.Cmd
	started time.Time
	ready   chan string   // the HTTP address, once the ready line is printed
	exited  chan struct{} // closed once the process has exited; then err is set
	err     error         // cmd.Wait's error

	mu       sync.Mutex
	stderr   []string
	watchers map[string]chan struct{} // closed when a line containing the key appears
}

// spawnServe starts `wxscan serve` on dir with the workers role and the
// fake WeChat API at apiBase; env adds or overrides settings. It does not
// wait: see waitReady and waitExit. The process is killed at cleanup.
func spawnServe(t *testing.T, dir, apiBase string, env ...string) *serveChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "WXSCAN_TEST_CHILD=1",
		"WXSCAN_ADDR=127.0.0.1:0", "WXSCAN_DATA_DIR="+dir, "WXSCAN_NATS_LISTEN=127.0.0.1:0",
		"WXSCAN_APPID="+testAppID, "WXSCAN_TOKEN="+testToken, "WXSCAN_AES_KEY="+testAESKey,
		"WXSCAN_APPSECRET=s", "WXSCAN_PUBLIC_URL=http://127.0.0.1", "WXSCAN_ROLES=callback,workers",
		"WXSCAN_API_BASE="+apiBase, "WXSCAN_OAUTH_BASE="+apiBase)
	cmd.Env = append(cmd.Env, env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, ready: make(chan string, 1), exited: make(chan struct{}), watchers: map[string]chan struct{}{}}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.stderr = append(c.stderr, line)
			for substr, ch := range c.watchers {
				if strings.Contains(line, substr) {
					close(ch)
					delete(c.watchers, substr)
				}
			}
			c.mu.Unlock()
			if i := strings.Index(line, `"addr":"`); i >= 0 && strings.Contains(line, "wxscan ready") {
				rest := line[i+len(`"addr":"`):]
				c.ready <- rest[:strings.Index(rest, `"`)]
			}
		}
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// lines returns what the child has printed on stderr so far.
func (c *serveChild) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.stderr)
}

// waitLine waits until the child prints a line containing substr.
func (c *serveChild) waitLine(t *testing.T, substr string, d time.Duration) {
	t.Helper()
	c.mu.Lock()
	for _, line := range c.stderr {
		if strings.Contains(line, substr) {
			c.mu.Unlock()
			return
		}
	}
	ch, ok := c.watchers[substr]
	if !ok {
		ch = make(chan struct{})
		c.watchers[substr] = ch
	}
	c.mu.Unlock()
	select {
	case <-ch:
	case <-c.exited:
		t.Fatalf("serve exited before printing %q; stderr:\n%s", substr, strings.Join(c.lines(), "\n"))
	case <-time.After(d):
		t.Fatalf("serve did not print %q after %v", substr, d)
	}
}

// waitReady waits for the ready line and returns the HTTP address, or ""
// if the process exited first.
func (c *serveChild) waitReady(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case addr := <-c.ready:
		return addr
	case <-c.exited:
		return ""
	case <-time.After(d):
		t.Fatalf("serve neither ready nor exited after %v; stderr:\n%s", d, strings.Join(c.lines(), "\n"))
		return ""
	}
}

// waitExit waits until the process exits and returns its exit code and how
// long after the start it exited.
func (c *serveChild) waitExit(t *testing.T, d time.Duration) (int, time.Duration) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(d):
		t.Fatalf("serve still running after %v; stderr:\n%s", d, strings.Join(c.lines(), "\n"))
	}
	elapsed := time.Since(c.started)
	var exit *exec.ExitError
	if errors.As(c.err, &exit) {
		return exit.ExitCode(), elapsed
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0, elapsed
}

// stop sends SIGTERM and wants a clean exit.
func (c *serveChild) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.waitExit(t, 15*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0; stderr:\n%s", code, strings.Join(c.lines(), "\n"))
	}
}

// oneLine checks that a failed start printed exactly one line, and returns it.
func oneLine(t *testing.T, c *serveChild) string {
	t.Helper()
	lines := c.lines()
	if got, want := len(lines), 1; got != want {
		t.Fatalf("stderr has %d lines, want %d:\n%s", got, want, strings.Join(lines, "\n"))
	}
	return lines[0]
}

// scanPusher sends scan events as WeChat would.
type scanPusher struct {
	sim    *wechatsim.Sim
	openid string
	n      int
}

func newScanPusher(addr, openid string) *scanPusher {
	return &scanPusher{sim: &wechatsim.Sim{URL: "http://" + addr + "/wechat/callback", Token: testToken, AppID: testAppID, Mode: "plain"}, openid: openid}
}

// push sends the next scan; it returns the code, the request (to send
// again as WeChat's retry) and WeChat's result.
func (p *scanPusher) push(t *testing.T, prefix string) (string, wechatsim.Request, wechatsim.Result) {
	t.Helper()
	p.n++
	code := fmt.Sprintf("CODE_128,%s%04d", prefix, p.n)
	req, err := p.sim.Build(wechatsim.Push{Kind: "scan", OpenID: p.openid, Code: code})
	if err != nil {
		t.Fatal(err)
	}
	return code, req, p.send(t, req)
}

// send sends req (again).
func (p *scanPusher) send(t *testing.T, req wechatsim.Request) wechatsim.Result {
	t.Helper()
	res, err := p.sim.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustRecord sends a scan and wants it recorded: 200 with the worker's
// passive reply, which is sent after the scan is committed.
func (p *scanPusher) mustRecord(t *testing.T, prefix string) string {
	t.Helper()
	code, _, res := p.push(t, prefix)
	if res.Status != http.StatusOK || res.Reply == "" {
		t.Fatalf("scan %s: %d %q, want 200 with a passive reply", code, res.Status, res.Body)
	}
	return code
}

// checkedStore opens dir's store (no process may hold it) and checks that
// the bbolt file is consistent. The caller closes it.
func checkedStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dbPath(dir), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		db.Close()
		t.Fatalf("bbolt file inconsistent: %v", err)
	}
	return db
}

// storedScans returns the open stocktake's scans in dir's checked store, and
// releases the store.
func storedScans(t *testing.T, dir string) []store.Scan {
	t.Helper()
	db := checkedStore(t, dir)
	defer db.Close()
	st, err := db.OpenStocktakeNow()
	if err != nil {
		t.Fatal(err)
	}
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	return scans
}

func scanCodes(scans []store.Scan) map[string]store.Scan {
	m := make(map[string]store.Scan, len(scans))
	for _, s := range scans {
		m[s.CodeType+","+s.Code] = s
	}
	return m
}

// adminScans exports the open stocktake's scans through a running serve's
// admin API.
func adminScans(t *testing.T, addr string) []store.Scan {
	t.Helper()
	get := func(path string, v any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+diskAdminToken)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var scans []store.Scan
	get("/admin/stocktakes/"+diskStocktake+"/scans?format=json", &scans)
	return scans
}

const (
	diskAdminToken = "disk-admin-token"
	diskStocktake  = "ST0001" // prepareData's stocktake in a fresh directory
)

// TestLockedDataDir is SPEC §7: a second serve on a data directory that a
// running one holds exits within 10 s with one line saying the directory is
// locked, and the first keeps working with its data intact. With the
// workers role the bbolt lock is taken before anything else, so the second
// never starts its embedded NATS on the first's JetStream store.
func TestLockedDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tests := []struct {
		name  string
		roles string
	}{
		{name: "workers", roles: "callback,workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := httptest.NewServer(fakewechat.New(fakewechat.Config{}))
			defer fake.Close()
			dir := t.TempDir()
			prepareData(t, dir, "oLock")
			first := spawnServe(t, dir, fake.URL, "WXSCAN_ROLES="+tt.roles)
			addr := first.waitReady(t, 10*time.Second)
			if addr == "" {
				t.Fatalf("first serve exited: %q", first.lines())
			}
			p := newScanPusher(addr, "oLock")
			want := []string{p.mustRecord(t, "L")}

			second := spawnServe(t, dir, fake.URL, "WXSCAN_ROLES="+tt.roles)
			if a := second.waitReady(t, 10*time.Second); a != "" {
				t.Fatalf("second serve on a held data directory became ready at %s", a)
			}
			code, elapsed := second.waitExit(t, 10*time.Second)
			if code == 0 {
				t.Fatal("second serve exited 0, want non-zero")
			}
			if elapsed > 10*time.Second {
				t.Fatalf("second serve exited after %v, want within 10s", elapsed)
			}
			line := oneLine(t, second)
			for _, part := range []string{"wxscan serve: data directory " + dir, "WXSCAN_DATA_DIR", "is locked", "another wxscan process is using it"} {
				if !strings.Contains(line, part) {
					t.Fatalf("stderr %q does not say %q", line, part)
				}
			}
			t.Logf("second serve exited %d after %v: %s", code, elapsed.Round(time.Millisecond), line)

			// The first keeps working.
			want = append(want, p.mustRecord(t, "L"))
			if got, want := httpStatus(t, "http://"+addr+"/readyz"), http.StatusOK; got != want {
				t.Fatalf("first serve's readyz=%d, want %d", got, want)
			}
			first.stop(t)

			// Neither its bbolt file nor its JetStream store was touched.
			got := scanCodes(storedScans(t, dir))
			if got, want := len(got), len(want); got != want {
				t.Fatalf("scans=%d, want %d", got, want)
			}
			for _, code := range want {
				if _, ok := got[code]; !ok {
					t.Fatalf("scan %s missing", code)
				}
			}
			cfg := testConfig(dir)
			cfg.Roles = []string{"callback"}
			if got, want := streamMsgs(t, MustRunMain(t, cfg)), uint64(len(want)); got != want {
				t.Fatalf("stream msgs=%d, want %d", got, want)
			}
		})
	}
}

// TestLockedDataDirCallbackOnly: a callback-only serve with the embedded
// NATS has no bbolt file; the JetStream store directory's lock stops the
// second one, which would otherwise run a second server on the same store.
func TestLockedDataDirCallbackOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	first := spawnServe(t, dir, "http://127.0.0.1:1", "WXSCAN_ROLES=callback", "WXSCAN_APPSECRET=")
	addr := first.waitReady(t, 10*time.Second)
	if addr == "" {
		t.Fatalf("first serve exited: %q", first.lines())
	}
	sim := &wechatsim.Sim{URL: "http://" + addr + "/wechat/callback", Token: testToken, AESKey: testAESKey, AppID: testAppID, Mode: "plain"}
	push := func() {
		t.Helper()
		req, err := sim.Build(wechatsim.Push{Kind: "location", OpenID: "oLock"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Send(context.Background(), req)
		if err != nil || res.Status != http.StatusOK || res.Body != "success" {
			t.Fatalf("push: %v %+v", err, res)
		}
	}
	push()

	second := spawnServe(t, dir, "http://127.0.0.1:1", "WXSCAN_ROLES=callback", "WXSCAN_APPSECRET=")
	if a := second.waitReady(t, 10*time.Second); a != "" {
		t.Fatalf("second serve on a held data directory became ready at %s", a)
	}
	code, elapsed := second.waitExit(t, 10*time.Second)
	if code == 0 || elapsed > 10*time.Second {
		t.Fatalf("second serve exited %d after %v, want non-zero within 10s", code, elapsed)
	}
	line := oneLine(t, second)
	for _, part := range []string{"wxscan serve: data directory " + dir, "WXSCAN_DATA_DIR", "is locked", "another wxscan process is using it"} {
		if !strings.Contains(line, part) {
			t.Fatalf("stderr %q does not say %q", line, part)
		}
	}
	push()
	if got, want := httpStatus(t, "http://"+addr+"/readyz"), http.StatusOK; got != want {
		t.Fatalf("first serve's readyz=%d, want %d", got, want)
	}
	first.stop(t)
	cfg := testConfig(dir)
	cfg.Roles = []string{"callback"}
	if got, want := streamMsgs(t, MustRunMain(t, cfg)), uint64(2); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
}

// TestDiskFullAtFirstStart: on a fresh data directory whose disk is full,
// serve exits at once with one line that says so and names the directory,
// and leaves no half-written database behind: once there is space it starts.
func TestDiskFullAtFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tests := []struct {
		name  string
		limit int
	}{
		{"bbolt's first pages", 4096},               // the initial write fails outright
		{"bbolt's first pages, short write", 10000}, // part of it lands on disk
		{"bbolt's first growth", 1 << 20},           // the migration's commit cannot grow the file
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := spawnServe(t, dir, "http://127.0.0.1:1", "WXSCAN_TEST_FSIZE="+strconv.Itoa(tt.limit))
			if a := c.waitReady(t, 10*time.Second); a != "" {
				t.Fatalf("serve became ready at %s under a %d-byte limit", a, tt.limit)
			}
			code, elapsed := c.waitExit(t, 10*time.Second)
			if code == 0 {
				t.Fatal("serve exited 0, want non-zero")
			}
			if elapsed > 5*time.Second {
				t.Fatalf("serve exited after %v, want at once", elapsed)
			}
			line := oneLine(t, c)
			for _, part := range []string{"wxscan serve: data directory " + dir, "WXSCAN_DATA_DIR", "out of disk space"} {
				if !strings.Contains(line, part) {
					t.Fatalf("stderr %q does not say %q", line, part)
				}
			}
			t.Logf("exit %d after %v: %s", code, elapsed.Round(time.Millisecond), line)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), store.FileName) {
					t.Fatalf("left %s behind", e.Name())
				}
			}

			again := spawnServe(t, dir, "http://127.0.0.1:1")
			if a := again.waitReady(t, 10*time.Second); a == "" {
				t.Fatalf("serve without the limit did not start: %q", again.lines())
			}
			again.stop(t)
			checkedStore(t, dir).Close()
		})
	}
}

// TestDiskFullWhileRunning is issue 4's disk-full drill on a data directory
// with data: bound staff, an open stocktake and recorded scans. serve
// starts under a file size limit just above what the directory holds (it
// starts: opening writes nothing new), so bbolt cannot grow its file (the
// worker's commit fails, is rolled back and retried later) and, a few
// events on, JetStream cannot append (the callback answers 503, never
// "success" for what it could not store). Then the limit is lifted, as when
// the operator frees space: the same process records every scan it answered
// "success" for. JetStream's stream stays failed until a restart; after
// one, WeChat's retries of the 503s are recorded, every scan is recorded
// exactly once, the scans from before are untouched, and the bbolt file and
// the stream are whole.
func TestDiskFullWhileRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	fake := httptest.NewServer(fakewechat.New(fakewechat.Config{}))
	defer fake.Close()
	dir := t.TempDir()
	prepareData(t, dir, "oDisk")
	env := []string{"WXSCAN_ADMIN_TOKEN=" + diskAdminToken}

	first := spawnServe(t, dir, fake.URL, env...)
	addr := first.waitReady(t, 10*time.Second)
	if addr == "" {
		t.Fatalf("serve exited: %q", first.lines())
	}
	p := newScanPusher(addr, "oDisk")
	for range 20 {
		p.mustRecord(t, "A")
	}
	first.stop(t)
	before := storedScans(t, dir)

	// The limit: the largest JetStream file plus about two events.
	var largest int64
	err := filepath.WalkDir(events.StoreDirOf(dir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			largest = max(largest, info.Size())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	limit := largest + 3000

	c := spawnServe(t, dir, fake.URL, append(env, "WXSCAN_TEST_FSIZE="+strconv.FormatInt(limit, 10))...)
	addr = c.waitReady(t, 10*time.Second)
	if addr == "" {
		t.Fatalf("serve did not start on existing data under a %d-byte limit: %q", limit, c.lines())
	}
	p = newScanPusher(addr, "oDisk")
	var recorded, accepted []string // 200 with the reply; 200 "success" without
	var refused []wechatsim.Request // 503: WeChat will retry them
	for len(refused) == 0 {
		if len(recorded)+len(accepted) == 12 {
			t.Fatalf("JetStream still stores events under a %d-byte limit", limit)
		}
		code, req, res := p.push(t, "B")
		switch {
		case res.Status == http.StatusOK && res.Reply != "":
			recorded = append(recorded, code)
		case res.Status == http.StatusOK:
			accepted = append(accepted, code)
		case res.Status == http.StatusServiceUnavailable:
			refused = append(refused, req)
		default:
			t.Fatalf("scan %s: %d %q", code, res.Status, res.Body)
		}
	}
	t.Logf("limit %d bytes: %d recorded, %d answered success unrecorded, then 503", limit, len(recorded), len(accepted))
	if len(accepted) == 0 {
		t.Fatalf("no scan failed to record under a %d-byte limit: the drill did not fill bbolt's disk", limit)
	}
	c.waitLine(t, "no space left on the data disk", 5*time.Second)

	// The operator frees space. The worker's retries of the failed batches
	// (with a backoff of up to 8 s) now commit, in the same process.
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	c.waitLine(t, fsizeLifted, 5*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := scanCodes(adminScans(t, addr))
		missing := 0
		for _, code := range accepted {
			if _, ok := got[code]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scans answered success still unrecorded 30s after the space came back", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// nats-server keeps a stream's write error until it restarts: the
	// callback goes on answering 503 (WeChat retries), so the operator
	// restarts serve.
	res := p.send(t, refused[0])
	t.Logf("a retry before the restart: %d; readyz %d", res.Status, httpStatus(t, "http://"+addr+"/readyz"))
	c.stop(t)

	c = spawnServe(t, dir, fake.URL, env...)
	old := addr
	addr = c.waitReady(t, 10*time.Second)
	if addr == "" {
		t.Fatalf("serve did not start after the disk was full: %q", c.lines())
	}
	p.sim.URL = "http://" + addr + "/wechat/callback"
	for _, req := range refused { // WeChat's retries, to the same public URL
		req.URL = strings.Replace(req.URL, old, addr, 1)
		if res := p.send(t, req); res.Status != http.StatusOK || res.Reply == "" {
			t.Fatalf("retry after the restart: %d %q, want 200 with a reply", res.Status, res.Body)
		}
	}
	after := p.mustRecord(t, "C")
	c.stop(t)

	scans := storedScans(t, dir)
	got := map[string]int{}
	for _, s := range scans {
		got[s.CodeType+","+s.Code]++
	}
	for code, n := range got {
		if n != 1 {
			t.Fatalf("scan %s recorded %d times", code, n)
		}
	}
	if got, want := len(scans), len(before)+len(recorded)+len(accepted)+len(refused)+1; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	for _, code := range slices.Concat(recorded, accepted, []string{after}) {
		if got[code] != 1 {
			t.Fatalf("scan %s missing", code)
		}
	}
	now := scanCodes(scans)
	for _, b := range before {
		a, ok := now[b.CodeType+","+b.Code]
		if !ok {
			t.Fatalf("scan %s from before the disk filled is gone", b.Code)
		}
		if a.EventID != b.EventID || a.OpenID != b.OpenID || a.Qty != b.Qty || a.Location != b.Location || !a.ScannedAt.Equal(b.ScannedAt) {
			t.Fatalf("scan %s changed: %+v, was %+v", b.Code, a, b)
		}
	}
	// JetStream's store is whole too: every event stored once.
	cfg := testConfig(dir)
	cfg.Roles = []string{"callback"}
	if got, want := streamMsgs(t, MustRunMain(t, cfg)), uint64(len(scans)); got != want {
		t.Fatalf("stream msgs=%d, want %d", got, want)
	}
}

// httpStatus returns the status of a GET.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
