package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxscan/wxscan/bench/internal/reqgen"
)

const callbackPath = "/wechat/callback"

// bench holds the running servers.
type bench struct {
	cfg    *config
	log    io.Writer
	procs  []*proc
	urls   map[string]string // target -> base URL
	byName map[string]*proc  // target -> its server
	wx     *proc
	admin  admin
	staff  []string
	nprof  int
	client *http.Client
}

// newBench starts the bare and peer servers, the fake WeChat API and
// `wxscan serve`, and binds the staff the scan events come from.
func newBench(ctx context.Context, cfg *config, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, log: log, urls: map[string]string{}, byName: map[string]*proc{}, client: &http.Client{Timeout: 10 * time.Second}}
	bin := filepath.Join(cfg.tmp, "bin")
	secrets := []string{"WXSCAN_TOKEN=" + cfg.token, "WXSCAN_AES_KEY=" + cfg.aesKey, "WXSCAN_APPID=" + cfg.appID, "WXSCAN_APPSECRET=" + cfg.appSecret}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	for _, name := range []string{"bare", "peer"} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := start(cfg, name, filepath.Join(bin, name), secrets, "-addr", addr)
		if err != nil {
			return nil, err
		}
		b.procs = append(b.procs, p)
		b.byName[name] = p
		b.urls[name] = "http://" + addr
		if err := waitHTTP(p, "http://"+addr+"/healthz", 10*time.Second); err != nil {
			return nil, err
		}
	}
	fakeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	fake, err := start(cfg, "fakewechat", filepath.Join(bin, "wxscan"), secrets, "fakewechat", "--addr", fakeAddr)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, fake)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(wxscanEnv(cfg, addr, natsAddr, "http://"+fakeAddr), cfg.wxscanEnv...)
	if cfg.profileDir != "" {
		env = append(env, "WXBENCH_PROFILE_DIR="+cfg.profileDir)
	}
	wx, err := start(cfg, "wxscan", filepath.Join(bin, "wxscan"), env, "serve")
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, wx)
	b.byName["wxscan"] = wx
	b.wx = wx
	b.urls["wxscan"] = "http://" + addr
	b.admin = admin{base: "http://" + addr, token: cfg.adminToken}
	if err := waitHTTP(wx, "http://"+addr+"/readyz", 30*time.Second); err != nil {
		return nil, err
	}
	for _, s := range cfg.scenarios {
		if s.kind == reqgen.KindScan {
			fmt.Fprintf(log, "wxbench: binding %d staff and opening a stocktake\n", cfg.staff)
			if b.staff, err = prepareStaff(ctx, b.admin, b.urls["wxscan"], cfg.staff); err != nil {
				return nil, err
			}
			if err := b.checkPassiveReply(ctx); err != nil {
				return nil, err
			}
			break
		}
	}
	ok = true
	return b, nil
}

// checkPassiveReply sends one scan from a bound staff member and checks it
// is answered with a passive reply, not "success".
func (b *bench) checkPassiveReply(ctx context.Context) error {
	g := b.generator(scenario{reqgen.KindScan, reqgen.ModePlain}, "probe")
	r, err := g.Next()
	if err != nil {
		return err
	}
	status, body, err := b.send(ctx, b.urls["wxscan"], r)
	if err != nil {
		return err
	}
	if status != http.StatusOK || !strings.Contains(body, "<MsgType><![CDATA[text]]></MsgType>") {
		return fmt.Errorf("a scan from bound staff got %d %q, want a passive text reply", status, body)
	}
	return nil
}

func (b *bench) close() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop()
	}
	b.procs = nil
}

func (b *bench) generator(s scenario, prefix string) *reqgen.Generator {
	g := &reqgen.Generator{Token: b.cfg.token, AESKey: b.cfg.aesKey, AppID: b.cfg.appID,
		Kind: s.kind, Mode: s.mode, Path: callbackPath, Prefix: prefix}
	if s.kind == reqgen.KindScan {
		g.OpenIDs = b.staff
	}
	return g
}

func (b *bench) send(ctx context.Context, base string, r reqgen.Request) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.Target, bytes.NewReader(r.Body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body), nil
}

// runResult is one target's run in one round of one scenario.
type runResult struct {
	Scenario scenario
	Target   string
	Round    int // 0 for the fixed-rate run
	M        Measure
	// For wxscan: the check of the stream (and scans) against the distinct
	// requests sent; Check is empty when it held.
	Checked bool
	Check   string
	Stream  uint64
	Scans   int
	Sent    int
}

type results struct {
	Runs  []runResult
	Fixed []runResult
}

func (r results) failed() bool {
	for _, rs := range [][]runResult{r.Runs, r.Fixed} {
		for _, x := range rs {
			if x.Check != "" || (x.Target == "wxscan" && x.M.Errors > 0) {
				return true
			}
		}
	}
	return false
}

func (b *bench) runAll(ctx context.Context) (results, error) {
	var res results
	cfg := b.cfg
	for round := 1; round <= cfg.rounds; round++ {
		for si, s := range cfg.scenarios {
			prefix := filepath.Join(cfg.tmp, "reqs")
			fmt.Fprintf(b.log, "wxbench: round %d/%d, %s: generating %d requests\n", round, cfg.rounds, s, cfg.threads*cfg.perThread)
			reqs, err := writeRequests(b.generator(s, "r"+strconv.Itoa(round)+"s"+strconv.Itoa(si)), prefix, cfg.threads, cfg.perThread)
			if err != nil {
				return res, err
			}
			for _, t := range cfg.targets {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				r, err := b.runOne(ctx, s, t, round, prefix, reqs)
				if err != nil {
					return res, err
				}
				fmt.Fprintf(b.log, "wxbench:   %-6s %8.0f req/s  p50 %-8s p99 %-8s cpu/req %-7s errors %d %s\n", t, r.M.RPS,
					fmtDur(r.M.P50), fmtDur(r.M.P99), fmtCPU(r.M.CPUPerReq), r.M.Errors, r.Check)
				res.Runs = append(res.Runs, r)
			}
			for t := range cfg.threads {
				_ = os.Remove(prefix + "." + strconv.Itoa(t))
			}
		}
	}
	if cfg.rate > 0 {
		n := int(cfg.rate * cfg.rateDuration.Seconds())
		for si, s := range cfg.scenarios {
			for _, t := range cfg.targets {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				g := b.generator(s, "f"+strconv.Itoa(si)+t)
				reqs := make([]reqgen.Request, n)
				var err error
				for i := range reqs {
					if reqs[i], err = g.Next(); err != nil {
						return res, err
					}
				}
				fmt.Fprintf(b.log, "wxbench: fixed rate %.0f/s, %s, %s\n", cfg.rate, s, t)
				var before counts
				if t == "wxscan" {
					if before, err = b.admin.counts(ctx); err != nil {
						return res, err
					}
				}
				if t == "wxscan" {
					b.profile(true)
				}
				m := fixedRate(ctx, b.urls[t], reqs, cfg.rate, 256)
				if t == "wxscan" {
					b.profile(false)
					if cfg.profileDir != "" {
						b.nameProfile(fmt.Sprintf("%s-%s-fixed", s.kind, s.mode))
					}
				}
				r := runResult{Scenario: s, Target: t, M: m}
				if t == "wxscan" {
					b.check(ctx, &r, before, n)
				}
				res.Fixed = append(res.Fixed, r)
			}
		}
	}
	return res, nil
}

// runOne runs wrk against one target. Against wxscan it then re-sends, as
// WeChat's retries would, each thread's last requests (those wrk may have
// cut off in flight), so that every request sent must be in the stream
// exactly once, and checks the counts.
func (b *bench) runOne(ctx context.Context, s scenario, target string, round int, prefix string, reqs [][]reqgen.Request) (runResult, error) {
	r := runResult{Scenario: s, Target: target, Round: round}
	var before counts
	var err error
	if target == "wxscan" {
		if before, err = b.admin.counts(ctx); err != nil {
			return r, err
		}
		b.profile(true)
	}
	cpu0, ok0 := b.byName[target].cpuTime()
	m, err := wrkRun(ctx, b.cfg, b.urls[target]+callbackPath, prefix, filepath.Join(b.cfg.tmp, "wrk.log"))
	if cpu1, ok1 := b.byName[target].cpuTime(); ok0 && ok1 && m.Requests > 0 {
		m.CPUPerReq = (cpu1 - cpu0) / time.Duration(m.Requests)
	}
	if target == "wxscan" {
		b.profile(false)
		if b.cfg.profileDir != "" {
			b.nameProfile(fmt.Sprintf("%s-%s-r%d", s.kind, s.mode, round))
		}
	}
	if err != nil {
		return r, err
	}
	r.M = m
	if target != "wxscan" {
		return r, nil
	}
	sent := 0
	for t, n := range m.Sent {
		sent += n
		if m.Wrapped {
			continue
		}
		for i := max(0, n-b.cfg.connections); i < n; i++ {
			if status, body, err := b.send(ctx, b.urls[target], reqs[t][i]); err != nil || status != http.StatusOK {
				r.Check = fmt.Sprintf("retry of a cut-off request: %d %q %v", status, body, err)
				return r, nil
			}
		}
	}
	if m.Wrapped {
		r.Checked, r.Check = true, "ran out of distinct requests (raise --requests)"
		return r, nil
	}
	// wrk calls request() once on its first thread to verify the script
	// before the run and never sends that request.
	sent--
	b.check(ctx, &r, before, sent)
	return r, nil
}

// check waits for the stream (and, for scans, the stocktake) to hold
// exactly sent more events than before, for up to a minute.
func (b *bench) check(ctx context.Context, r *runResult, before counts, sent int) {
	r.Checked, r.Sent = true, sent
	deadline := time.Now().Add(60 * time.Second)
	for {
		after, err := b.admin.counts(ctx)
		if err != nil {
			r.Check = err.Error()
			return
		}
		r.Stream, r.Scans = after.StreamMsgs-before.StreamMsgs, after.Scans-before.Scans
		done := r.Stream == uint64(sent)
		if r.Scenario.kind == reqgen.KindScan {
			done = done && r.Scans == sent
		}
		if done {
			r.Check = ""
			return
		}
		if time.Now().After(deadline) || r.Stream > uint64(sent) || r.Scans > sent {
			r.Check = fmt.Sprintf("stream +%d, scans +%d for %d distinct events sent", r.Stream, r.Scans, sent)
			if r.Scenario.kind != reqgen.KindScan {
				r.Check = fmt.Sprintf("stream +%d for %d distinct events sent", r.Stream, sent)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// profile starts (on) or stops wxscan's profiles through the build-time
// hook; a no-op without --cpuprofile.
func (b *bench) profile(on bool) {
	if b.cfg.profileDir == "" {
		return
	}
	if on {
		b.nprof++
	}
	_ = b.wx.cmd.Process.Signal(syscall.SIGUSR1)
}

// nameProfile waits for the hook to finish profile b.nprof and renames its
// files after the run.
func (b *bench) nameProfile(name string) {
	dir := b.cfg.profileDir
	end := filepath.Join(dir, fmt.Sprintf("allocs-%d-end.pprof", b.nprof))
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(end); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range [][2]string{
		{fmt.Sprintf("cpu-%d.pprof", b.nprof), name + ".cpu.pprof"},
		{fmt.Sprintf("allocs-%d-start.pprof", b.nprof), name + ".allocs-start.pprof"},
		{fmt.Sprintf("allocs-%d-end.pprof", b.nprof), name + ".allocs-end.pprof"},
	} {
		_ = os.Rename(filepath.Join(dir, p[0]), filepath.Join(dir, p[1]))
	}
}
