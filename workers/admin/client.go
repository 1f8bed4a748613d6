package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxscan/wxscan/workers/wechatapi"
)

// Client is a Go client of the admin API of a running `wxscan serve`. It is
// safe for concurrent use. Every method sends one request; its error is
// one line, and is one of:
//   - *Error: the admin API answered an error ({"error":...}); errors.Is
//     matches ErrOff when the API is off and ErrUnauthorized for a missing
//     or wrong token;
//   - an error matching ErrNotAdminAPI: the answer came from some other
//     server (an HTML page, a 404 without the OffHeader, ...);
//   - an error matching ErrUnreachable: no answer (connection refused, DNS,
//     TLS);
//   - the context's error, or a local I/O error (writing an export).
type Client struct {
	base  string // scheme://host[:port][/prefix], without a trailing slash
	token string
	hc    *http.Client
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient makes the client send its requests with hc.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) { c.hc = hc }
}

// NewClient returns a client of the admin API at baseURL (the server's base,
// e.g. http://127.0.0.1:8080, without /admin) with the bearer token (empty:
// none is sent, and the server answers 401). It fails only for a baseURL
// that is not an http(s) URL.
func NewClient(baseURL, token string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin: server %q is not an http(s) URL", baseURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// An export or a backup may take long to stream, but its headers come
	// at once; a server that never answers is cut off.
	tr.ResponseHeaderTimeout = 2 * time.Minute
	c := &Client{base: u.String(), token: token, hc: &http.Client{Transport: tr}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL is the server's base URL the client talks to.
func (c *Client) URL() string { return c.base }

// ImportUsers imports a staff directory file (POST /admin/users/import), all
// or nothing. contentType is the body's type; empty means CSV.
func (c *Client) ImportUsers(ctx context.Context, body io.Reader, contentType string) (ImportResult, error) {
	if contentType == "" {
		contentType = "text/csv; charset=utf-8"
	}
	var res ImportResult
	err := c.callJSON(ctx, http.MethodPost, "/admin/users/import", contentType, body, &res)
	return res, err
}

// ImportItems imports an item master file (POST /admin/items/import), all
// or nothing. contentType is the body's type; empty means CSV.
func (c *Client) ImportItems(ctx context.Context, body io.Reader, contentType string) (ImportResult, error) {
	if contentType == "" {
		contentType = "text/csv; charset=utf-8"
	}
	var res ImportResult
	err := c.callJSON(ctx, http.MethodPost, "/admin/items/import", contentType, body, &res)
	return res, err
}

// Users lists the staff directory with each person's binding and bind
// lockout, sorted by employee_no (GET /admin/users).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var list []User
	err := c.callJSON(ctx, http.MethodGet, "/admin/users", "", nil, &list)
	return list, err
}

// UnlockUser lifts an employee's bind lockout and returns the person (POST
// /admin/users/{employee_no}/unlock). Idempotent.
func (c *Client) UnlockUser(ctx context.Context, employeeNo string) (User, error) {
	var u User
	err := c.callJSON(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(employeeNo)+"/unlock", "", nil, &u)
	return u, err
}

// UnlockOpenID lifts a WeChat user's bind lockout (POST
// /admin/bindings/{openid}/unlock). Idempotent.
func (c *Client) UnlockOpenID(ctx context.Context, openid string) error {
	return c.callJSON(ctx, http.MethodPost, "/admin/bindings/"+url.PathEscape(openid)+"/unlock", "", nil, nil)
}

// OpenStocktake opens a stocktake (POST /admin/stocktakes): as JSON, or,
// when req.Expected is set, as a multipart form with the book stock as the
// file part "expected" (read whole before the request is sent).
func (c *Client) OpenStocktake(ctx context.Context, req OpenStocktakeRequest) (Stocktake, error) {
	var st Stocktake
	if req.Expected == nil {
		err := c.postJSON(ctx, "/admin/stocktakes", req, &st)
		return st, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("name", req.Name)
	_ = mw.WriteField("locations", strings.Join(req.Locations, ","))
	part, err := mw.CreateFormFile("expected", "expected")
	if err != nil {
		return st, fmt.Errorf("admin: open stocktake: %w", err)
	}
	if _, err := io.Copy(part, req.Expected); err != nil {
		return st, fmt.Errorf("admin: open stocktake: read the book stock: %w", err)
	}
	if err := mw.Close(); err != nil {
		return st, fmt.Errorf("admin: open stocktake: %w", err)
	}
	err = c.callJSON(ctx, http.MethodPost, "/admin/stocktakes", mw.FormDataContentType(), &body, &st)
	return st, err
}

// CloseStocktake closes stocktake id (POST /admin/stocktakes/{id}/close).
func (c *Client) CloseStocktake(ctx context.Context, id string) (Stocktake, error) {
	var st Stocktake
	err := c.callJSON(ctx, http.MethodPost, "/admin/stocktakes/"+url.PathEscape(id)+"/close", "", nil, &st)
	return st, err
}

// Stocktakes lists every stocktake, oldest first (GET /admin/stocktakes).
func (c *Client) Stocktakes(ctx context.Context) ([]Stocktake, error) {
	var list []Stocktake
	err := c.callJSON(ctx, http.MethodGet, "/admin/stocktakes", "", nil, &list)
	return list, err
}

// ExportOptions chooses what ExportScans asks for.
type ExportOptions struct {
	// Format is "csv" (the default when empty), "json" or "xlsx".
	Format string
	// Summary asks for the total per location and code instead of the scans.
	Summary bool
	// Variance asks for the count against the book stock (SPEC §9) instead
	// of the scans; not with Summary (the server answers 400).
	Variance bool
}

func (o ExportOptions) query() url.Values {
	q := url.Values{}
	format := o.Format
	if format == "" {
		format = "csv"
	}
	q.Set("format", format)
	if o.Summary {
		q.Set("summary", "1")
	}
	if o.Variance {
		q.Set("variance", "1")
	}
	return q
}

// ExportScans copies the export of stocktake id (GET
// /admin/stocktakes/{id}/scans) to w as the server streams it. An error
// after the first byte was written means w holds a truncated export.
func (c *Client) ExportScans(ctx context.Context, id string, opts ExportOptions, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, "/admin/stocktakes/"+url.PathEscape(id)+"/scans?"+opts.query().Encode(), "", nil,
		"text/csv", "application/json", FormatXLSX.ContentType())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("admin: export cut short: %w", err)
	}
	return nil
}

// Bindings lists every binding, sorted by employee_no (GET /admin/bindings).
func (c *Client) Bindings(ctx context.Context) ([]Binding, error) {
	var list []Binding
	err := c.callJSON(ctx, http.MethodGet, "/admin/bindings", "", nil, &list)
	return list, err
}

// RemoveBinding removes openid's binding (DELETE /admin/bindings/{openid}).
func (c *Client) RemoveBinding(ctx context.Context, openid string) error {
	return c.callJSON(ctx, http.MethodDelete, "/admin/bindings/"+url.PathEscape(openid), "", nil, nil)
}

// PushMenu replaces the account's custom menu with wxscan's and returns
// the menu pushed (POST /admin/menu).
func (c *Client) PushMenu(ctx context.Context) (wechatapi.Menu, error) {
	var m wechatapi.Menu
	err := c.callJSON(ctx, http.MethodPost, "/admin/menu", "", nil, &m)
	return m, err
}

// DLQ lists the dead letters, oldest first (GET /admin/dlq).
func (c *Client) DLQ(ctx context.Context) ([]DeadLetter, error) {
	var list []DeadLetter
	err := c.callJSON(ctx, http.MethodGet, "/admin/dlq", "", nil, &list)
	return list, err
}

// Replay puts dead letter id back on its stream and returns it (POST
// /admin/dlq/{id}/replay).
func (c *Client) Replay(ctx context.Context, id uint64) (DeadLetter, error) {
	var d DeadLetter
	err := c.callJSON(ctx, http.MethodPost, "/admin/dlq/"+strconv.FormatUint(id, 10)+"/replay", "", nil, &d)
	return d, err
}

// ReplayAll replays every dead letter (POST /admin/dlq/replay).
func (c *Client) ReplayAll(ctx context.Context) (ReplayAllResult, error) {
	var res ReplayAllResult
	err := c.callJSON(ctx, http.MethodPost, "/admin/dlq/replay", "", nil, &res)
	return res, err
}

// Status reports the stream, the consumer, the DLQ, the token and today's
// scans (GET /admin/status).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.callJSON(ctx, http.MethodGet, "/admin/status", "", nil, &st)
	return st, err
}

// postJSON posts req as JSON and decodes the answer into out.
func (c *Client) postJSON(ctx context.Context, path string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("admin: encode %s: %w", path, err)
	}
	return c.callJSON(ctx, http.MethodPost, path, "application/json", bytes.NewReader(body), out)
}

// callJSON sends one request and decodes the JSON answer into out (nil:
// the answer is discarded).
func (c *Client) callJSON(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, path, contentType, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin: %s %s: the answer is not what this wxscan expects: %w", method, path, err)
	}
	return nil
}

// do sends one request and returns a 2xx response that came from a wxscan
// admin API, whose body the caller closes: it carries the OffHeader, or
// (from a wxscan older than that header) one of the media types wantTypes.
// Any other outcome is an error (see Client).
func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, wantTypes ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if resp.Header.Get(OffHeader) != "" || slices.Contains(wantTypes, mediaType(resp)) {
			return resp, nil
		}
		resp.Body.Close()
		return nil, c.foreign(resp)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, c.errorOf(resp, raw)
}

// ErrOff matches an *Error that says the server's admin API is off (no
// WXSCAN_ADMIN_TOKEN there).
var ErrOff = errors.New("admin API is off")

// ErrUnauthorized matches an *Error for a missing or wrong token.
var ErrUnauthorized = errors.New("unauthorized")

// ErrNotAdminAPI matches the error for an answer that did not come from a
// wxscan admin API.
var ErrNotAdminAPI = errors.New("not a wxscan admin API")

// ErrUnreachable matches the error for a request that got no answer.
var ErrUnreachable = errors.New("wxscan server unreachable")

// Error is an error answer of the admin API.
type Error struct {
	Status  int    // the HTTP status
	Message string // the API's one-line message
	// Off is set when the server said its admin API is off (OffHeader).
	Off bool

	noToken bool // the request carried no token
}

// Error is one line: the status and the message, or for the two errors an
// operator fixes in their own settings, what to check.
func (e *Error) Error() string {
	switch {
	case e.Off:
		return "admin API is off: set WXSCAN_ADMIN_TOKEN on the server"
	case e.Status == http.StatusUnauthorized && e.noToken:
		return "unauthorized: check WXSCAN_ADMIN_TOKEN (it is not set here)"
	case e.Status == http.StatusUnauthorized:
		return "unauthorized: check WXSCAN_ADMIN_TOKEN"
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is matches ErrOff and ErrUnauthorized.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOff:
		return e.Off
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	}
	return false
}

// errorOf is the client's one error mapper: it turns a non-2xx answer into
// an *Error when the admin API sent it, and into ErrNotAdminAPI otherwise.
// A 404 counts as the API's only with the OffHeader, since any server
// answers 404 for a path it does not know.
func (c *Client) errorOf(resp *http.Response, raw []byte) error {
	var body ErrorBody
	isBody := mediaType(resp) == "application/json" && json.Unmarshal(raw, &body) == nil && body.Error != ""
	mark := resp.Header.Get(OffHeader)
	if !isBody || (resp.StatusCode == http.StatusNotFound && mark == "") {
		return c.foreign(resp)
	}
	return &Error{Status: resp.StatusCode, Message: oneLine(body.Error), Off: mark == "off", noToken: c.token == ""}
}

// notAdminError is an answer from a server that is not a wxscan admin API.
type notAdminError struct {
	base        string
	status      string
	contentType string
}

func (e *notAdminError) Error() string {
	ct := e.contentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("%s does not look like a wxscan server (%s, %s)", e.base, e.status, ct)
}

func (e *notAdminError) Is(target error) bool { return target == ErrNotAdminAPI }

func (c *Client) foreign(resp *http.Response) error {
	return &notAdminError{base: c.base, status: fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)), contentType: mediaType(resp)}
}

// unreachableError is a request that got no answer.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string        { return e.msg }
func (e *unreachableError) Unwrap() error        { return e.err }
func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return &unreachableError{msg: fmt.Sprintf("cannot reach wxscan at %s (is `wxscan serve` running?)", c.base), err: err}
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	return &unreachableError{msg: fmt.Sprintf("cannot reach wxscan at %s: %s", c.base, oneLine(cause.Error())), err: err}
}

// mediaType is the response's media type without parameters, lower case.
func mediaType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}
