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
		"each once in the stream and recorded", "wxscan/bare", "fixed rate 100"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("a check failed:\n%s", out)
	}
}
