package main

import (
	"fmt"
	"io"
	"time"
)

// loadCost is what a self-hosted load cost this process beyond the report:
// its CPU time from the start of the load on wxscan until every scan was
// recorded (the load's client and wxscan together), and the console live
// pages kept open meanwhile.
type loadCost struct {
	CPU         time.Duration `json:"cpu_ns"`
	LivePages   int           `json:"live_pages,omitempty"`
	LiveUpdates int64         `json:"live_updates,omitempty"`
}

// writeText prints the cost; with scans recorded, the CPU per 1,000 of
// them, which a shared machine's other work disturbs far less than the
// rate.
func (c loadCost) writeText(w io.Writer, scans int) {
	if c.LivePages > 0 {
		fmt.Fprintf(w, "console live pages: %d open, %d updates received\n", c.LivePages, c.LiveUpdates)
	}
	if c.CPU > 0 && scans > 0 {
		fmt.Fprintf(w, "process CPU: %s, %.1f ms per 1000 scans recorded\n", c.CPU.Round(time.Millisecond), float64(c.CPU.Milliseconds())*1000/float64(scans))
	}
}
