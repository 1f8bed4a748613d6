// Command wxbench is the benchmark anyone can run: wrk (the Debian package)
// with a Lua script replaying distinct, pre-signed WeChat pushes against, in
// one run and in alternating rounds, a bare net/http handler, silenceper's
// official-account server with a nil handler (the peer), and `wxscan serve`
// in its default shape. It prints requests/s, p50/p99, errors and the
// ratios, and checks that wxscan's stream holds each accepted event once and
// that every scan from bound staff was recorded. A fixed-rate run (open
// loop, in Go) measures latency at a given rate.
//
// Run it from the bench directory: go run ./cmd/wxbench
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type config struct {
	repo, benchDir, tmp, wrk        string
	rounds, threads, connections    int
	duration                        time.Duration
	perThread                       int
	scenarios                       []scenario
	targets                         []string
	rate                            float64
	rateDuration                    time.Duration
	staff                           int
	profileDir                      string
	keep                            bool
	wxscanEnv                       []string
	token, aesKey, appID, appSecret string
	adminToken, natsToken           string
}

// scenario is one kind of push in one mode.
type scenario struct{ kind, mode string }

func (s scenario) String() string { return s.kind + "/" + s.mode }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := &config{}
	fs := flag.NewFlagSet("wxbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.repo, "repo", "..", "the wxscan repository (where cmd/wxscan is)")
	fs.StringVar(&cfg.benchDir, "bench", ".", "the bench module (where cmd/peer is)")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; each round loads every target once per scenario, in turn")
	fs.IntVar(&cfg.threads, "threads", 2, "wrk threads")
	fs.IntVar(&cfg.connections, "connections", 64, "wrk connections")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of one wrk run")
	fs.IntVar(&cfg.perThread, "requests", 250000, "distinct requests per wrk thread per round (must outlast the fastest wxscan run)")
	scen := fs.String("scenarios", "location/plain,location/safe,scan/plain", "kind/mode pairs: kind location or scan, mode plain or safe")
	targets := fs.String("targets", "bare,peer,wxscan", "targets, in the order of each round")
	fs.Float64Var(&cfg.rate, "rate", 2000, "fixed-rate run: requests/s (0 skips it)")
	fs.DurationVar(&cfg.rateDuration, "rate-duration", 10*time.Second, "length of each fixed-rate run")
	fs.IntVar(&cfg.staff, "staff", 64, "bound staff members the scan events come from")
	fs.StringVar(&cfg.profileDir, "cpuprofile", "", "write wxscan's CPU and allocation profiles of each wrk and fixed-rate run into this directory")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (logs, request files)")
	fs.StringVar(&cfg.wrk, "wrk", "wrk", "the wrk binary")
	fs.Func("wxscan-env", "KEY=VALUE added to wxscan's environment, e.g. WXSCAN_NATS_SYNC=always (repeatable; default: the default shape)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || !strings.HasPrefix(k, "WXSCAN_") {
			return fmt.Errorf("want WXSCAN_NAME=VALUE")
		}
		cfg.wxscanEnv = append(cfg.wxscanEnv, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*scen, ",") {
		k, m, _ := strings.Cut(strings.TrimSpace(s), "/")
		if (k != "location" && k != "scan") || (m != "plain" && m != "safe") {
			return fmt.Errorf("bad scenario %q: want location|scan / plain|safe", s)
		}
		cfg.scenarios = append(cfg.scenarios, scenario{k, m})
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if t != "bare" && t != "peer" && t != "wxscan" {
			return fmt.Errorf("bad target %q: want bare, peer or wxscan", t)
		}
		cfg.targets = append(cfg.targets, t)
	}
	var err error
	if cfg.wrk, err = exec.LookPath(cfg.wrk); err != nil {
		return fmt.Errorf("wrk not found (apt-get install wrk): %w", err)
	}
	if cfg.benchDir, err = filepath.Abs(cfg.benchDir); err != nil {
		return err
	}
	if cfg.repo, err = filepath.Abs(cfg.repo); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.repo, "cmd", "wxscan")); err != nil {
		return fmt.Errorf("--repo %s has no cmd/wxscan: run from the bench directory or pass --repo", cfg.repo)
	}
	if _, err := os.Stat(filepath.Join(cfg.benchDir, "cmd", "peer")); err != nil {
		return fmt.Errorf("--bench %s has no cmd/peer: run from the bench directory or pass --bench", cfg.benchDir)
	}
	if cfg.profileDir != "" {
		if cfg.profileDir, err = filepath.Abs(cfg.profileDir); err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}
	if cfg.tmp, err = os.MkdirTemp("", "wxbench-"); err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintf(stderr, "wxbench: keeping %s\n", cfg.tmp)
	} else {
		defer os.RemoveAll(cfg.tmp)
	}
	cfg.token, cfg.appID, cfg.appSecret = randHex(16), "wxbench"+randHex(5), randHex(16)
	cfg.adminToken, cfg.natsToken = randHex(24), randHex(24)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg.aesKey = strings.TrimRight(base64.StdEncoding.EncodeToString(key), "=")

	fmt.Fprintf(stderr, "wxbench: building wxscan, bare and peer\n")
	if err := build(ctx, cfg); err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.runAll(ctx)
	report(stdout, cfg, res)
	if err != nil {
		return err
	}
	if res.failed() {
		return fmt.Errorf("some checks failed (see above)")
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
