package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report prints every run, the ratios per scenario (each computed within a
// round, then the range over the rounds) and the fixed-rate runs.
func report(w io.Writer, cfg *config, res results) {
	fmt.Fprintf(w, "\nwrk -t%d -c%d -d%s, %d round(s), targets in turn: %s\n\n", cfg.threads, cfg.connections,
		cfg.duration, cfg.rounds, strings.Join(cfg.targets, ", "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttarget\tround\treq/s\tp50\tp99\tcpu/req\terrors\tcheck")
	for _, r := range res.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\n", r.Scenario, r.Target, r.Round, r.M.RPS,
			fmtDur(r.M.P50), fmtDur(r.M.P99), fmtCPU(r.M.CPUPerReq), r.M.Errors, checkText(r))
	}
	tw.Flush()

	ratioTable(w, res.Runs, "ratios of requests/s, per round (range over rounds):", rate)
	ratioTable(w, res.Runs, "ratios of requests per CPU-second of the server (1 / cpu/req), per round; on a shared\n"+
		"machine these move less than requests/s, and wrk's own CPU does not enter them:", perCPU)

	if len(res.Fixed) > 0 {
		fmt.Fprintf(w, "\nfixed rate %.0f requests/s for %s, open loop (latency from when each request was due):\n", cfg.rate, cfg.rateDuration)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "scenario\ttarget\tanswered/s\tp50\tp99\tmax\terrors\tcheck")
		for _, r := range res.Fixed {
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%d\t%s\n", r.Scenario, r.Target, r.M.RPS,
				fmtDur(r.M.P50), fmtDur(r.M.P99), fmtDur(r.M.Max), r.M.Errors, checkText(r))
		}
		tw.Flush()
	}
}

func checkText(r runResult) string {
	switch {
	case !r.Checked:
		return "-"
	case r.Check != "":
		return "FAILED: " + r.Check
	case r.Scenario.kind == "scan":
		return fmt.Sprintf("ok: %d events, each once in the stream and recorded", r.Sent)
	default:
		return fmt.Sprintf("ok: %d events, each once in the stream", r.Sent)
	}
}

// rate and perCPU are what a ratio compares: requests per second of the
// run, and requests per CPU-second of the server (-1 when unknown).
func rate(m Measure) float64 { return m.RPS }

func perCPU(m Measure) float64 {
	if m.CPUPerReq <= 0 {
		return -1
	}
	return float64(time.Second) / float64(m.CPUPerReq)
}

// ratioTable prints, per scenario, wxscan/bare, wxscan/peer and peer/bare
// of value.
func ratioTable(w io.Writer, runs []runResult, title string, value func(Measure) float64) {
	fmt.Fprintln(w, "\n"+title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\twxscan/bare\twxscan/peer\tpeer/bare")
	seen := map[scenario]bool{}
	for _, r := range runs {
		if seen[r.Scenario] {
			continue
		}
		seen[r.Scenario] = true
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Scenario, ratios(runs, r.Scenario, "wxscan", "bare", value),
			ratios(runs, r.Scenario, "wxscan", "peer", value), ratios(runs, r.Scenario, "peer", "bare", value))
	}
	tw.Flush()
}

// ratios is value(a)/value(b) for each round where both ran and b's value
// is above 0 (a negative value is unknown), as "min–max (r1, r2, ...)".
func ratios(runs []runResult, s scenario, a, b string, value func(Measure) float64) string {
	rps := map[[2]any]float64{}
	rounds := []int{}
	for _, r := range runs {
		if r.Scenario == s {
			rps[[2]any{r.Target, r.Round}] = value(r.M)
			if !slices.Contains(rounds, r.Round) {
				rounds = append(rounds, r.Round)
			}
		}
	}
	var vs []float64
	var parts []string
	for _, rd := range rounds {
		x, okA := rps[[2]any{a, rd}]
		y, okB := rps[[2]any{b, rd}]
		if okA && okB && x >= 0 && y > 0 {
			vs = append(vs, x/y)
			parts = append(parts, fmt.Sprintf("%.2f", x/y))
		}
	}
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f–%.2f (%s)", slices.Min(vs), slices.Max(vs), strings.Join(parts, ", "))
}

// fmtCPU prints a CPU time per request, "-" when unknown.
func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Microsecond).String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return d.Round(time.Microsecond).String()
	}
}
