// Package wechatapi is a client of the WeChat Official Account API: the access token and jsapi_ticket
// (cached, persisted and refreshed one at a time), web-page OAuth, custom-service text messages, the custom
// menu and the JS-SDK signature.
//
// A Client is safe for concurrent use by many goroutines. It never logs the AppSecret or a token: logs name
// the endpoint and the errcode only, and errors never carry a request URL.
package wechatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is WeChat's API base (WXSCAN_API_BASE).
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultOAuthBase is the base of WeChat's OAuth authorize page (WXSCAN_OAUTH_BASE).
const DefaultOAuthBase = "https://open.weixin.qq.com"

// Token kinds under which the TokenCache stores credentials.
const (
	KindAccessToken = "access_token"
	KindJSAPITicket = "jsapi_ticket"
)

const (
	defaultTimeout          = 5 * time.Second
	defaultRefreshAhead     = 5 * time.Minute
	defaultMinForcedRefresh = 30 * time.Second
	// refreshTimeout bounds one shared refresh; it runs detached from the caller that started it.
	refreshTimeout = 30 * time.Second
	maxAnswerSize  = 1 << 20
)

// TokenCache persists credentials across restarts. *store.DB implements it.
// LoadToken answers ("", time.Time{}, nil) when nothing is stored for kind.
type TokenCache interface {
	LoadToken(kind string) (value string, expiresAt time.Time, err error)
	SaveToken(kind, value string, expiresAt time.Time) error
}

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	BaseURL   string // WXSCAN_API_BASE; default DefaultBaseURL
	AppID     string // WXSCAN_APPID; required
	AppSecret string // WXSCAN_APPSECRET; required, never logged

	HTTPClient *http.Client // default: a client with a 5 s timeout
	Cache      TokenCache   // nil: tokens live in memory only
	Now        func() time.Time
	Logger     *slog.Logger
	// Metrics receives the client's measurements; nil keeps them unregistered.
	Metrics *Metrics

	// RefreshAhead is how long before expiry a credential is refreshed (default 5m; at most half its life).
	RefreshAhead time.Duration
	// MinForcedRefresh is the least time between two refreshes forced by an invalid-token errcode
	// (40001, 42001, 40014); default 30s.
	MinForcedRefresh time.Duration
}

// Stats are counters for status pages and metrics.
type Stats struct {
	TokenRefreshes    int       // successful cgi-bin/stable_token calls, forced ones included
	LastRefresh       time.Time // time of the last successful cgi-bin/stable_token call
	ForceRefreshCalls int       // successful cgi-bin/stable_token calls with force_refresh: true
	TicketRefreshes   int       // successful cgi-bin/ticket/getticket calls
	ForcedRefreshes   int       // credentials dropped after an invalid-token errcode
}

// Client talks to the WeChat API. It is safe for concurrent use.
type Client struct {
	base         string
	appID        string
	appSecret    string
	http         *http.Client
	cache        TokenCache
	now          func() time.Time
	log          *slog.Logger
	metrics      *Metrics
	refreshAhead time.Duration
	minForced    time.Duration

	token  *credential
	ticket *credential

	statsMu sync.Mutex
	stats   Stats
}

// New checks cfg and returns a Client. It does no I/O: the cached token is loaded on first use.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("wechatapi: AppID is empty (WXSCAN_APPID)")
	}
	if cfg.AppSecret == "" {
		return nil, errors.New("wechatapi: AppSecret is empty (WXSCAN_APPSECRET)")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wechatapi: BaseURL %q is not an http(s) URL (WXSCAN_API_BASE)", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.RefreshAhead <= 0 {
		cfg.RefreshAhead = defaultRefreshAhead
	}
	if cfg.MinForcedRefresh <= 0 {
		cfg.MinForcedRefresh = defaultMinForcedRefresh
	}
	c := &Client{
		base:         strings.TrimRight(cfg.BaseURL, "/"),
		appID:        cfg.AppID,
		appSecret:    cfg.AppSecret,
		http:         cfg.HTTPClient,
		cache:        cfg.Cache,
		now:          cfg.Now,
		log:          cfg.Logger,
		metrics:      cfg.Metrics,
		refreshAhead: cfg.RefreshAhead,
		minForced:    cfg.MinForcedRefresh,
	}
	c.token = &credential{kind: KindAccessToken, c: c, fetch: c.fetchToken}
	c.ticket = &credential{kind: KindJSAPITicket, c: c, fetch: c.fetchTicket}
	return c, nil
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

func (c *Client) count(f func(*Stats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.statsMu.Unlock()
}

// status is the errcode/errmsg pair every WeChat answer may carry.
type status struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// call sends one request to endpoint (relative to the base, e.g. "cgi-bin/stable_token"), checks the HTTP status
// and the errcode, and decodes the JSON answer into out (when not nil). A non-nil body is sent as JSON.
// Errors are *Error (errcode), *StatusError (HTTP status) or transport/decoding errors; none holds the URL.
// Each call is counted by endpoint and outcome.
func (c *Client) call(ctx context.Context, method, endpoint string, query url.Values, body any, out any) (err error) {
	defer func() { c.metrics.calls.WithLabelValues(endpoint, callLabel(err)).Inc() }()
	var rd io.Reader
	if body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return fmt.Errorf("%s: encode request: %w", endpoint, err)
		}
		rd = &buf
	}
	target := c.base + "/" + endpoint
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("%s: cannot build request (check BaseURL)", endpoint)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error prints the URL, which holds the secret or a token: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.log.Warn("wechatapi: request failed", "endpoint", endpoint, "err", err)
		return fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.log.Warn("wechatapi: http error", "endpoint", endpoint, "status", resp.StatusCode)
		return &StatusError{Endpoint: endpoint, StatusCode: resp.StatusCode}
	}
	var st status
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%s: decode answer: %w", endpoint, err)
	}
	c.log.Debug("wechatapi: call", "endpoint", endpoint, "errcode", st.ErrCode, "took", time.Since(start))
	if st.ErrCode != 0 {
		c.log.Warn("wechatapi: errcode", "endpoint", endpoint, "errcode", st.ErrCode)
		return &Error{Endpoint: endpoint, Code: st.ErrCode, Msg: st.ErrMsg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: decode answer: %w", endpoint, err)
		}
	}
	return nil
}
