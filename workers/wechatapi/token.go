package wechatapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// credential is one cached, persisted, refreshed-one-at-a-time secret: the access token or the
// jsapi_ticket.
type credential struct {
	kind string
	c    *Client
	// fetch gets a new value; rejected is the value WeChat last called invalid ("" for a refresh due to
	// age), which fetch must not answer again.
	fetch func(ctx context.Context, rejected string) (value string, ttl time.Duration, err error)

	mu         sync.Mutex
	loaded     bool // the TokenCache was read
	value      string
	expiresAt  time.Time
	refreshAt  time.Time
	lastForced time.Time
	rejected   string  // the value drop dropped, for the next refresh to avoid
	flight     *flight // the refresh under way, if any
}

// earlyRetry is how long a failed early refresh waits before the next try while the value is still good.
const earlyRetry = 10 * time.Second

// flight is one refresh that concurrent callers wait for.
type flight struct {
	done  chan struct{}
	value string
	err   error
}

// get returns the current value, refreshing it first when it is missing or due. Concurrent callers share
// one refresh; a caller whose ctx ends stops waiting, but the refresh goes on for the others.
func (k *credential) get(ctx context.Context) (string, error) {
	k.mu.Lock()
	if !k.loaded {
		k.loaded = true
		k.loadLocked()
	}
	if k.value != "" && k.c.now().Before(k.refreshAt) {
		v := k.value
		k.mu.Unlock()
		return v, nil
	}
	f := k.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		k.flight = f
		go k.refresh(context.WithoutCancel(ctx), f, k.rejected)
		k.rejected = ""
	}
	k.mu.Unlock()
	select {
	case <-f.done:
		return f.value, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (k *credential) loadLocked() {
	if k.c.cache == nil {
		return
	}
	v, exp, err := k.c.cache.LoadToken(k.kind)
	if err != nil {
		k.c.log.Warn("wechatapi: load cached credential", "kind", k.kind, "err", err)
		return
	}
	if v == "" || !k.c.now().Before(exp) {
		return
	}
	k.value, k.expiresAt, k.refreshAt = v, exp, exp.Add(-k.c.refreshAhead)
}

func (k *credential) refresh(ctx context.Context, f *flight, rejected string) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	start := k.c.now()
	value, ttl, err := k.fetch(ctx, rejected)
	var expiresAt time.Time
	if err == nil {
		expiresAt = start.Add(ttl)
		// Saved before the flight ends, so that no later refresh can be overwritten by this one.
		if k.c.cache != nil {
			if serr := k.c.cache.SaveToken(k.kind, value, expiresAt); serr != nil {
				k.c.log.Warn("wechatapi: save credential", "kind", k.kind, "err", serr)
			}
		}
		k.c.log.Info("wechatapi: credential refreshed", "kind", k.kind, "expires_in", ttl)
		k.c.metrics.refreshes.WithLabelValues(k.kind, "ok").Inc()
		k.c.metrics.refreshed.WithLabelValues(k.kind).Set(float64(k.c.now().Unix()))
	} else {
		k.c.metrics.refreshes.WithLabelValues(k.kind, "error").Inc()
	}

	k.mu.Lock()
	k.flight = nil
	switch {
	case err == nil:
		k.value, k.expiresAt = value, expiresAt
		k.refreshAt = expiresAt.Add(-min(k.c.refreshAhead, ttl/2))
	case k.value != "" && k.c.now().Before(k.expiresAt):
		// An early refresh failed, but the current value is still good: keep using it.
		k.c.log.Warn("wechatapi: early refresh failed, keeping the current credential", "kind", k.kind, "err", err)
		value, err = k.value, nil
		k.refreshAt = k.c.now().Add(earlyRetry)
		if k.refreshAt.After(k.expiresAt) {
			k.refreshAt = k.expiresAt
		}
	}
	k.mu.Unlock()

	f.value, f.err = value, err
	close(f.done)
}

// drop forgets failed after WeChat called it invalid, so that the next get refreshes (a forced refresh:
// the next fetch is told that failed was rejected). It drops only if failed is still the current value
// (another caller may have replaced it already) and answers whether the caller may retry: false when a
// forced refresh happened less than MinForcedRefresh ago.
func (k *credential) drop(failed string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.value != failed {
		return true
	}
	now := k.c.now()
	if !k.lastForced.IsZero() && now.Sub(k.lastForced) < k.c.minForced {
		return false
	}
	k.lastForced = now
	k.value, k.expiresAt, k.refreshAt = "", time.Time{}, time.Time{}
	k.rejected = failed
	k.c.count(func(s *Stats) { s.ForcedRefreshes++ })
	k.c.metrics.forced.WithLabelValues(k.kind).Inc()
	k.c.log.Warn("wechatapi: credential rejected, forcing a refresh", "kind", k.kind)
	return true
}

// invalidTokenCodes mean that the access token used for a call is not valid (any more).
var invalidTokenCodes = []int{CodeInvalidCredential, CodeInvalidToken, CodeTokenExpired}

// withToken runs fn with the access token. When WeChat answers that the token is invalid, the token is
// dropped (compare-and-drop) and fn runs once more with a fresh one, unless a forced refresh happened less
// than MinForcedRefresh ago; then the invalid-token error is returned.
func (c *Client) withToken(ctx context.Context, fn func(token string) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.token.get(ctx)
		if err != nil {
			return fmt.Errorf("access token: %w", err)
		}
		err = fn(tok)
		if attempt > 0 || !IsCode(err, invalidTokenCodes...) {
			return err
		}
		if !c.token.drop(tok) {
			return fmt.Errorf("forced token refresh refused (at most one per %s): %w", c.minForced, err)
		}
	}
}

// AccessToken returns a valid access token, from memory, from the TokenCache or from
// cgi-bin/stable_token, in that order. It is refreshed RefreshAhead before expiry; concurrent callers share one refresh.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	tok, err := c.token.get(ctx)
	if err != nil {
		return "", fmt.Errorf("wechatapi: access token: %w", err)
	}
	return tok, nil
}

// JSAPITicket returns a valid JS-SDK jsapi_ticket, cached and refreshed like the access token.
func (c *Client) JSAPITicket(ctx context.Context) (string, error) {
	t, err := c.ticket.get(ctx)
	if err != nil {
		return "", fmt.Errorf("wechatapi: jsapi ticket: %w", err)
	}
	return t, nil
}

// InvalidateJSAPITicket drops ticket if it is still the current one (e.g. after wx.config reported a bad
// signature), so that the next JSAPITicket fetches a new one. Like every forced refresh it is rate-limited;
// it answers false when the drop was refused.
func (c *Client) InvalidateJSAPITicket(ticket string) bool {
	return c.ticket.drop(ticket)
}

// stableTokenRequest is the body of cgi-bin/stable_token; force_refresh is left out in normal mode.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh,omitempty"`
}

// fetchToken gets the access token from cgi-bin/stable_token. Normal mode answers the token WeChat holds
// for the AppID (the same one every system sharing the AppID gets, with its remaining life), so it never
// invalidates another system's token. After WeChat rejected a token, normal mode usually answers a newer
// one (another system forced a refresh); only when it answers the rejected token again is a refresh
// forced (force_refresh: true, which invalidates that token everywhere; WeChat allows 20 a day). drop's
// rate limit bounds the forced calls to one per MinForcedRefresh.
func (c *Client) fetchToken(ctx context.Context, rejected string) (string, time.Duration, error) {
	tok, ttl, err := c.stableToken(ctx, false)
	if err != nil || rejected == "" || tok != rejected {
		return tok, ttl, err
	}
	c.log.Warn("wechatapi: stable_token answered the rejected access token, forcing a refresh")
	return c.stableToken(ctx, true)
}

func (c *Client) stableToken(ctx context.Context, force bool) (string, time.Duration, error) {
	req := stableTokenRequest{GrantType: "client_credential", AppID: c.appID, Secret: c.appSecret, ForceRefresh: force}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := c.call(ctx, http.MethodPost, "cgi-bin/stable_token", nil, req, &out); err != nil {
		return "", 0, err
	}
	if out.AccessToken == "" {
		return "", 0, errors.New("cgi-bin/stable_token: answer without access_token")
	}
	now := c.now()
	c.count(func(s *Stats) {
		s.TokenRefreshes++
		s.LastRefresh = now
		if force {
			s.ForceRefreshCalls++
		}
	})
	return out.AccessToken, ttl(out.ExpiresIn), nil
}

func (c *Client) fetchTicket(ctx context.Context, _ string) (string, time.Duration, error) {
	var out struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	err := c.withToken(ctx, func(tok string) error {
		q := url.Values{"access_token": {tok}, "type": {"jsapi"}}
		return c.call(ctx, http.MethodGet, "cgi-bin/ticket/getticket", q, nil, &out)
	})
	if err != nil {
		return "", 0, err
	}
	if out.Ticket == "" {
		return "", 0, errors.New("cgi-bin/ticket/getticket: answer without ticket")
	}
	c.count(func(s *Stats) { s.TicketRefreshes++ })
	return out.Ticket, ttl(out.ExpiresIn), nil
}

// ttl turns expires_in into a duration; WeChat's documented default is 7200 s.
func ttl(expiresIn int) time.Duration {
	if expiresIn <= 0 {
		expiresIn = 7200
	}
	return time.Duration(expiresIn) * time.Second
}
