package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSimulateLoadDefaultShape runs `simulate load` without --url: it
// measures wxscan in the default shape (callback and workers), checks every
// accepted scan was recorded, and prints no ratio against a baseline.
func TestSimulateLoadDefaultShape(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a load against a wxscan of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	noEnv := func(string) string { return "" }
	var out, errOut bytes.Buffer
	if err := runSimulate(ctx, []string{"load", "--kind", "scan", "--duration", "300ms", "--concurrency", "4"}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	s := out.String()
	if !strings.Contains(s, "roles: callback,workers\nwxscan (scan, plain)") {
		t.Errorf("not the default shape:\n%s", s)
	}
	m := regexp.MustCompile(`scans recorded: (\d+) for (\d+) accepted`).FindStringSubmatch(s)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("scans recorded line missing or wrong:\n%s", s)
	}
	for _, banned := range []string{"ratio", "baseline"} {
		if strings.Contains(strings.ToLower(s), banned) {
			t.Errorf("output mentions %q:\n%s", banned, s)
		}
	}

	out.Reset()
	if err := runSimulate(ctx, []string{"load", "--roles", "callback", "--duration", "300ms", "--concurrency", "4"}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	s = out.String()
	if !strings.Contains(s, "roles: callback\nwxscan (location, plain)") || strings.Contains(s, "scans recorded") ||
		strings.Contains(strings.ToLower(s), "ratio") {
		t.Errorf("--roles callback:\n%s", s)
	}
	if !regexp.MustCompile(`stream messages: (\d+) for (\d+) accepted events`).MatchString(s) {
		t.Errorf("no stream check:\n%s", s)
	}
}
