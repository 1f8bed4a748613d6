package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/bench/internal/reqgen"
)

//go:embed replay.lua
var replayLua []byte

// Measure is one wrk run against one target.
type Measure struct {
	Requests int           // answers received
	Errors   int           // socket errors (connect, read, write, timeout) and non-2xx/3xx answers
	Non2xx   int           // answers with status >= 400
	Duration time.Duration // wrk's measured run length
	RPS      float64
	P50, P99 time.Duration
	Max      time.Duration
	// Sent is, per wrk thread, how many requests it sent; Wrapped is true
	// when a thread ran out of distinct requests and sent some twice.
	Sent    []int
	Wrapped bool
	// CPUPerReq is the server's CPU time (user and system, all its
	// threads) during the run over the answers: steadier than requests/s
	// on a machine shared with other work. Zero where unknown.
	CPUPerReq time.Duration
}

// wrkRun runs wrk with the replay script against url, the threads reading
// prefix.<thread>. Its full output is appended to logPath.
func wrkRun(ctx context.Context, cfg *config, url, prefix, logPath string) (Measure, error) {
	script := filepath.Join(cfg.tmp, "replay.lua")
	if _, err := os.Stat(script); err != nil {
		if err := os.WriteFile(script, replayLua, 0o644); err != nil {
			return Measure{}, err
		}
	}
	args := []string{"-t" + strconv.Itoa(cfg.threads), "-c" + strconv.Itoa(cfg.connections),
		"-d" + cfg.duration.String(), "--latency", "--timeout", "5s", "-s", script, url, "--", prefix}
	cmd := exec.CommandContext(ctx, cfg.wrk, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if f, ferr := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); ferr == nil {
		fmt.Fprintf(f, "$ %s %s\n%s\n", cfg.wrk, strings.Join(args, " "), out.Bytes())
		f.Close()
	}
	if err != nil {
		return Measure{}, fmt.Errorf("wrk: %w: %s", err, lastLines(out.String(), 5))
	}
	return parseWrk(out.String(), cfg.threads)
}

// parseWrk reads the WXBENCH lines that replay.lua's done() prints.
func parseWrk(out string, threads int) (Measure, error) {
	var m Measure
	m.Sent = make([]int, threads)
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		kv := map[string]int{}
		for _, p := range f[1:] {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return m, fmt.Errorf("wrk output: %q: %w", p, err)
			}
			kv[k] = n
		}
		switch f[0] {
		case "WXBENCH":
			found = true
			m.Requests = kv["requests"]
			m.Duration = time.Duration(kv["duration_us"]) * time.Microsecond
			m.Non2xx = kv["status"]
			m.Errors = kv["connect"] + kv["read"] + kv["write"] + kv["timeout"] + kv["status"]
			m.P50 = time.Duration(kv["p50_us"]) * time.Microsecond
			m.P99 = time.Duration(kv["p99_us"]) * time.Microsecond
			m.Max = time.Duration(kv["max_us"]) * time.Microsecond
			if m.Duration > 0 {
				m.RPS = float64(m.Requests) / m.Duration.Seconds()
			}
		case "WXBENCH_THREAD":
			if id := kv["id"]; id >= 0 && id < threads {
				m.Sent[id] = kv["sent"]
			}
			m.Wrapped = m.Wrapped || kv["wrapped"] > 0
		}
	}
	if !found {
		return m, fmt.Errorf("wrk output has no WXBENCH line: %s", lastLines(out, 5))
	}
	return m, nil
}

// writeRequests generates perThread requests for each wrk thread with g and
// writes them to prefix.<thread>; it returns them, per thread.
func writeRequests(g *reqgen.Generator, prefix string, threads, perThread int) ([][]reqgen.Request, error) {
	all := make([][]reqgen.Request, threads)
	for t := range threads {
		reqs := make([]reqgen.Request, perThread)
		for i := range reqs {
			r, err := g.Next()
			if err != nil {
				return nil, err
			}
			reqs[i] = r
		}
		if err := reqgen.WriteFile(prefix+"."+strconv.Itoa(t), "127.0.0.1", reqs); err != nil {
			return nil, err
		}
		all[t] = reqs
	}
	return all, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
