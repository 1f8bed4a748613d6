//go:build linux

// Command fsyncprobe measures how long fdatasync takes on a disk, the way
// the workers' bbolt commits use it: a 32 KiB write, then fdatasync, in a
// loop. A durable path that waits for fsync (every recorded scan does)
// cannot have a tail shorter than the disk's, so run it beside wxbench's
// fixed-rate figures.
//
// Run it from the bench directory: go run ./cmd/fsyncprobe -dir /path/on/the/disk
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "a directory on the disk to measure")
	d := flag.Duration("duration", 10*time.Second, "how long to measure")
	flag.Parse()
	if err := run(*dir, *d); err != nil {
		fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
		os.Exit(1)
	}
}

func run(dir string, d time.Duration) error {
	f, err := os.CreateTemp(dir, "fsyncprobe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 32<<10)
	var took []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		off := int64(len(took)%1000) * int64(len(buf))
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		start := time.Now()
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync %s: %w", filepath.Base(f.Name()), err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	n := len(took)
	over := 0
	for _, t := range took {
		if t > 30*time.Millisecond {
			over++
		}
	}
	fmt.Printf("fdatasync on %s, %d calls in %v: p50 %v, p99 %v, p99.9 %v, max %v, %d over 30ms\n",
		dir, n, d, took[n/2].Round(time.Microsecond), took[n*99/100].Round(time.Microsecond),
		took[n*999/1000].Round(time.Microsecond), took[n-1].Round(time.Microsecond), over)
	return nil
}
