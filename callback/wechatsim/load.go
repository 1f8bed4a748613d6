package wechatsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxscan/wxscan/events"
)

// LoadConfig is one load run: distinct, valid, signed pushes of one kind.
type LoadConfig struct {
	Kind        string        // location (default), scan, text, subscribe, click
	Concurrency int           // requests in flight; default 32
	Duration    time.Duration // default 5s
	// Rate caps requests per second over all workers (0: as fast as the
	// server answers).
	Rate float64
	// RunID makes openids and codes distinct across runs against one server.
	RunID string
	// OpenIDs, when set, are the senders, round robin (e.g. bound staff, so
	// that scans are recorded); by default every push has its own openid.
	OpenIDs []string
}

// LoadReport is what a load run measured.
type LoadReport struct {
	Requests int             `json:"requests"`
	OK       int             `json:"ok"`
	Errors   int             `json:"errors"` // transport errors and non-200 answers
	Statuses map[int]int     `json:"statuses"`
	Elapsed  time.Duration   `json:"elapsed_ns"`
	RPS      float64         `json:"rps"`
	P50      time.Duration   `json:"p50_ns"`
	P99      time.Duration   `json:"p99_ns"`
	Max      time.Duration   `json:"max_ns"`
	Samples  []time.Duration `json:"-"`
}

func (r LoadReport) String() string {
	return fmt.Sprintf("%d requests in %.1fs: %.0f req/s, p50 %s, p99 %s, max %s, %d errors %v",
		r.Requests, r.Elapsed.Seconds(), r.RPS, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
		r.Max.Round(10*time.Microsecond), r.Errors, r.Statuses)
}

// Load sends distinct pushes of cfg.Kind until cfg.Duration has passed and
// reports throughput and latency. Every push is new: its own openid (and
// code or MsgId), so each accepted one must become exactly one event.
func (s *Sim) Load(ctx context.Context, cfg LoadConfig) (LoadReport, error) {
	if err := s.init(); err != nil {
		return LoadReport{}, err
	}
	if cfg.Kind == "" {
		cfg.Kind = "location"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.RunID == "" {
		cfg.RunID = events.RandomHex(3)
	}
	// One build first, so that a bad configuration fails before the run.
	if _, err := s.Build(s.loadPush(cfg, 0, 0)); err != nil {
		return LoadReport{}, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Concurrency) / cfg.Rate)
	}
	type result struct {
		lat      []time.Duration
		statuses map[int]int
		errs     int
	}
	results := make([]result, cfg.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			res := result{statuses: map[int]int{}}
			next := time.Now().Add(time.Duration(w) * interval / time.Duration(cfg.Concurrency))
			for i := 0; ctx.Err() == nil; i++ {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
						}
						if ctx.Err() != nil {
							break
						}
					}
					next = next.Add(interval)
				}
				req, err := s.Build(s.loadPush(cfg, w, i))
				if err != nil {
					res.errs++
					continue
				}
				t0 := time.Now()
				status, err := post(client, req)
				lat := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // cut off by the end of the run, not a failure
					}
					res.errs++
					continue
				}
				res.statuses[status]++
				if status != http.StatusOK {
					res.errs++
				}
				res.lat = append(res.lat, lat)
			}
			results[w] = res
		})
	}
	wg.Wait()
	rep := LoadReport{Statuses: map[int]int{}, Elapsed: time.Since(start)}
	for _, r := range results {
		rep.Samples = append(rep.Samples, r.lat...)
		rep.Errors += r.errs
		for k, v := range r.statuses {
			rep.Statuses[k] += v
			rep.Requests += v
		}
	}
	rep.OK = rep.Statuses[http.StatusOK]
	rep.RPS = float64(rep.Requests) / rep.Elapsed.Seconds()
	slices.Sort(rep.Samples)
	if n := len(rep.Samples); n > 0 {
		rep.P50 = rep.Samples[n/2]
		rep.P99 = rep.Samples[min(n-1, n*99/100)]
		rep.Max = rep.Samples[n-1]
	}
	return rep, nil
}

func (s *Sim) loadPush(cfg LoadConfig, worker, i int) Push {
	id := cfg.RunID + "w" + strconv.Itoa(worker) + "n" + strconv.Itoa(i)
	p := Push{Kind: cfg.Kind, OpenID: "oLoad" + id}
	if n := len(cfg.OpenIDs); n > 0 {
		p.OpenID = cfg.OpenIDs[(worker+i)%n]
	}
	switch cfg.Kind {
	case "scan":
		p.Code = "CODE_128,ITEM-" + strings.ToUpper(id)
	case "text":
		p.Content = "load " + id
	}
	return p
}

func post(client *http.Client, req Request) (int, error) {
	resp, err := client.Post(req.URL, "text/xml", bytes.NewReader(req.Body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
