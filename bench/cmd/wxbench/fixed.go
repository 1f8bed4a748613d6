package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/wxscan/wxscan/bench/internal/reqgen"
)

// fixedRate sends reqs to base (scheme and host) open loop: request i is due
// at start + i/rate whatever happened to the ones before, and its latency is
// counted from when it was due, not from when a connection was free (no
// coordinated omission). wrk2 would do this, but it is not packaged in
// Debian. At most inflight requests are outstanding; a late one waits and
// its wait counts.
func fixedRate(ctx context.Context, base string, reqs []reqgen.Request, rate float64, inflight int) Measure {
	tr := &http.Transport{MaxIdleConnsPerHost: inflight, MaxConnsPerHost: inflight, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	type job struct {
		r   reqgen.Request
		due time.Time
	}
	jobs := make(chan job, len(reqs))
	var mu sync.Mutex
	var lat []time.Duration
	errs, non2xx := 0, 0
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			for j := range jobs {
				if d := time.Until(j.due); d > 0 {
					time.Sleep(d)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+j.r.Target, bytes.NewReader(j.r.Body))
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
					continue
				}
				req.Header.Set("Content-Type", "text/xml")
				resp, err := client.Do(req)
				var status int
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				l := time.Since(j.due)
				mu.Lock()
				switch {
				case err != nil:
					errs++
				case status >= 400:
					non2xx++
					errs++
					lat = append(lat, l)
				default:
					lat = append(lat, l)
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now().Add(50 * time.Millisecond)
	for i, r := range reqs {
		jobs <- job{r: r, due: start.Add(time.Duration(float64(i) / rate * float64(time.Second)))}
	}
	close(jobs)
	wg.Wait()
	m := Measure{Requests: len(lat), Errors: errs, Non2xx: non2xx, Duration: time.Since(start), Sent: []int{len(reqs)}}
	m.RPS = float64(m.Requests) / m.Duration.Seconds()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		m.P50, m.P99, m.Max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
	}
	return m
}
