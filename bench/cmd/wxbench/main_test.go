package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 1s test @ http://127.0.0.1:1/wechat/callback
WXBENCH requests=1000 duration_us=500000 connect=0 read=1 write=0 status=3 timeout=2 p50_us=1500 p99_us=9000 max_us=12000
WXBENCH_THREAD id=0 sent=510 size=600 wrapped=0
WXBENCH_THREAD id=1 sent=520 size=600 wrapped=1
`
	m, err := parseWrk(out, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Requests != 1000 || m.RPS != 2000 || m.Errors != 6 || m.Non2xx != 3 {
		t.Errorf("requests %d, rps %v, errors %d, non-2xx %d", m.Requests, m.RPS, m.Errors, m.Non2xx)
	}
	if m.P50 != 1500*time.Microsecond || m.P99 != 9*time.Millisecond || m.Max != 12*time.Millisecond {
		t.Errorf("p50 %s p99 %s max %s", m.P50, m.P99, m.Max)
	}
	if m.Sent[0] != 510 || m.Sent[1] != 520 || !m.Wrapped {
		t.Errorf("sent %v wrapped %v", m.Sent, m.Wrapped)
	}
	if _, err := parseWrk("Running 1s test\nsocket error\n", 2); err == nil {
		t.Error("output without a WXBENCH line parsed")
	}
	if _, err := parseWrk("WXBENCH requests=x\n", 2); err == nil {
		t.Error("a malformed number parsed")
	}
}

// TestSmoke runs one tiny round of every scenario against every target,
// with the stream and scan checks, when wrk is installed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wxscan and runs wrk")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-repo", "../../..", "-bench", "../..", "-rounds", "1", "-duration", "1s",
		"-requests", "20000", "-rate", "100", "-rate-duration", "1s", "-staff", "2"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"location/plain  wxscan", "location/safe   wxscan", "scan/plain      wxscan",
		"each once in the stream and recorded", "wxscan/bare", "requests per CPU-second", "fixed rate 100"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("a check failed:\n%s", out)
	}
}

func TestRatios(t *testing.T) {
	s := scenario{"location", "plain"}
	run := func(target string, round int, rps float64, cpu time.Duration) runResult {
		return runResult{Scenario: s, Target: target, Round: round, M: Measure{RPS: rps, CPUPerReq: cpu}}
	}
	runs := []runResult{
		run("peer", 1, 20000, 50*time.Microsecond), run("wxscan", 1, 10000, 100*time.Microsecond),
		run("peer", 2, 20000, 0), run("wxscan", 2, 30000, 40*time.Microsecond),
		run("peer", 3, 20000, 80*time.Microsecond), run("wxscan", 3, 0, 0),
	}
	for _, tc := range []struct {
		name  string
		value func(Measure) float64
		want  string
	}{
		// A round where wxscan answered nothing counts as 0.
		{"rate", rate, "0.00–1.50 (0.50, 1.50, 0.00)"},
		// Rounds with an unknown CPU time are left out.
		{"per CPU-second", perCPU, "0.50–0.50 (0.50)"},
	} {
		if got := ratios(runs, s, "wxscan", "peer", tc.value); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := ratios(runs, s, "wxscan", "bare", perCPU); got != "-" {
		t.Errorf("without bare: %q, want -", got)
	}
}
