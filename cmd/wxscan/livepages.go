package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// livePages is a number of console live pages kept open on one stocktake
// during a load: each signs in and reads the page's event stream, as a
// browser does.
type livePages struct {
	updates atomic.Int64 // live updates received, over all pages
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// openLivePages signs in to the console at base with the admin token and
// opens n live pages of stocktake id; Close ends them. Each page loads once
// and then follows its event stream.
func openLivePages(ctx context.Context, base, token, id string, n int) (*livePages, error) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/console/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("console sign-in: %w", err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		return nil, fmt.Errorf("console sign-in: %s, no session", resp.Status)
	}
	ctx, cancel := context.WithCancel(ctx)
	lp := &livePages{cancel: cancel}
	started := make(chan error, n)
	for range n {
		lp.wg.Go(func() {
			get := func(path string) (*http.Response, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
				if err != nil {
					return nil, err
				}
				req.AddCookie(cookie)
				resp, err := client.Do(req)
				if err == nil && resp.StatusCode != http.StatusOK {
					resp.Body.Close()
					err = errors.New(path + ": " + resp.Status)
				}
				return resp, err
			}
			page, err := get("/console/stocktakes/" + url.PathEscape(id))
			if err != nil {
				started <- err
				return
			}
			page.Body.Close()
			stream, err := get("/console/stocktakes/" + url.PathEscape(id) + "/events")
			started <- err
			if err != nil {
				return
			}
			defer stream.Body.Close()
			sc := bufio.NewScanner(stream.Body)
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				if sc.Text() == "event: live" {
					lp.updates.Add(1)
				}
			}
		})
	}
	for range n {
		if err := <-started; err != nil {
			lp.Close()
			return nil, fmt.Errorf("console live page: %w", err)
		}
	}
	return lp, nil
}

// Updates is how many live updates the pages have received.
func (lp *livePages) Updates() int64 { return lp.updates.Load() }

// Close ends the pages and waits for them.
func (lp *livePages) Close() {
	lp.cancel()
	lp.wg.Wait()
}

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
