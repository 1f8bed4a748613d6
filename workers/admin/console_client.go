package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// LivePages is a number of console live pages kept open on one stocktake,
// as browsers keep them: each loads the page and then follows its event
// stream. It is the console's own client, for load runs and tests. Its
// methods are safe for concurrent use.
type LivePages struct {
	updates atomic.Int64 // live updates received, over all pages
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// OpenLivePages signs in to the console at base with the admin token and
// opens n live pages of stocktake id; Close ends them. Each page loads once
// and then follows its event stream.
func OpenLivePages(ctx context.Context, base, token, id string, n int) (*LivePages, error) {
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
	lp := &LivePages{cancel: cancel}
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
func (lp *LivePages) Updates() int64 { return lp.updates.Load() }

// Close ends the pages and waits for them.
func (lp *LivePages) Close() {
	lp.cancel()
	lp.wg.Wait()
}

// Wait blocks until every page's stream has ended: the server closed it, or
// Close did.
func (lp *LivePages) Wait() { lp.wg.Wait() }
