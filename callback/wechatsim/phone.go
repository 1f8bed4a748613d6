package wechatsim

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Phone plays a staff member's WeChat browser against the staff pages: it
// opens /bind, passes WeChat's (fake) authorize page as the given openid,
// and submits the bind form. It only works against an authorize page that
// honours an `openid` parameter, such as `wxscan fakewechat`.
type Phone struct {
	// Server is the base URL of the pages, e.g. http://127.0.0.1:8080.
	Server string
	Client *http.Client
}

// PageResult is the last page the phone saw.
type PageResult struct {
	Status int
	Body   string
}

var hiddenSession = regexp.MustCompile(`<input[^>]*name="session"[^>]*>`)
var valueAttr = regexp.MustCompile(`value="([^"]*)"`)

// Bind binds openid to employeeNo with bindCode through /bind, the OAuth
// round trip and the form, and returns the final page.
func (p *Phone) Bind(ctx context.Context, openid, employeeNo, bindCode string) (PageResult, error) {
	client := p.Client
	if client == nil {
		jar, _ := cookiejar.New(nil)
		client = &http.Client{Jar: jar}
	}
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(u string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, "", err
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, string(b), err
	}
	resp, body, err := get(strings.TrimRight(p.Server, "/") + "/bind")
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: open /bind: %w", err)
	}
	if resp.StatusCode != http.StatusFound {
		return PageResult{resp.StatusCode, body}, fmt.Errorf("wechatsim: /bind answered %d, want 302", resp.StatusCode)
	}
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: /bind location: %w", err)
	}
	q := auth.Query()
	q.Set("openid", openid)
	auth.RawQuery, auth.Fragment = q.Encode(), ""
	resp, body, err = get(auth.String())
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: authorize page: %w", err)
	}
	if resp.StatusCode != http.StatusFound {
		return PageResult{resp.StatusCode, body}, fmt.Errorf("wechatsim: authorize page answered %d, want 302", resp.StatusCode)
	}
	// The redirect goes to WXSCAN_PUBLIC_URL; reach it through Server, as a
	// load balancer in front of the callback would.
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: authorize redirect: %w", err)
	}
	srv, err := url.Parse(p.Server)
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: server url: %w", err)
	}
	back.Scheme, back.Host = srv.Scheme, srv.Host
	resp, body, err = get(back.String())
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: oauth callback: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return PageResult{resp.StatusCode, body}, nil
	}
	input := hiddenSession.FindString(body)
	m := valueAttr.FindStringSubmatch(input)
	if m == nil {
		return PageResult{resp.StatusCode, body}, errors.New("wechatsim: the bind page has no session field")
	}
	form := url.Values{"session": {html.UnescapeString(m[1])}, "employee_no": {employeeNo}, "bind_code": {bindCode}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.Server, "/")+"/bind", strings.NewReader(form.Encode()))
	if err != nil {
		return PageResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noFollow.Do(req)
	if err != nil {
		return PageResult{}, fmt.Errorf("wechatsim: submit bind form: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return PageResult{resp.StatusCode, string(b)}, nil
}

var scriptOrStyle = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`)

// Text is the page's visible text on one line, roughly: what a person
// reads on it, without markup, scripts or styles.
func (r PageResult) Text() string {
	page := r.Body
	if i := strings.Index(page, "<body"); i >= 0 {
		page = page[i:]
	}
	page = scriptOrStyle.ReplaceAllString(page, " ")
	var b strings.Builder
	in := false
	for _, c := range page {
		switch {
		case c == '<':
			in = true
		case c == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(c)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
