package fakewechat

import (
	"crypto/rand"
	"net/http"
	"net/url"
)

// authorize plays the OAuth authorize page: it issues a code for the fake user and redirects to
// redirect_uri with code and state. The extra parameters openid (default DefaultOpenID) and snapshot=1
// choose the user and make the code's exchange answer is_snapshotuser: 1.
func (s *Server) authorize(r *http.Request) reply {
	q := r.URL.Query()
	bad := func(msg string) reply { return reply{status: http.StatusBadRequest, text: msg} }
	if q.Get("appid") == "" || (s.cfg.AppID != "" && q.Get("appid") != s.cfg.AppID) {
		return bad("invalid appid")
	}
	if q.Get("response_type") != "code" {
		return bad("invalid response_type")
	}
	scope := q.Get("scope")
	if scope != "snsapi_base" && scope != "snsapi_userinfo" {
		return bad("invalid scope")
	}
	target, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !target.IsAbs() {
		return bad("redirect_uri is not an absolute URL")
	}
	openid := q.Get("openid")
	if openid == "" {
		openid = DefaultOpenID
	}
	code := s.issueCode(openid, scope, q.Get("snapshot") == "1")
	tq := target.Query()
	tq.Set("code", code)
	tq.Set("state", q.Get("state"))
	target.RawQuery = tq.Encode()
	target.Fragment = ""
	return reply{status: http.StatusFound, location: target.String()}
}

// IssueCode issues an OAuth code for openid (scope snsapi_base), as the authorize page does, for tests
// that skip the page. The code can be exchanged once, within 5 minutes.
func (s *Server) IssueCode(openid string, snapshot bool) string {
	return s.issueCode(openid, "snsapi_base", snapshot)
}

func (s *Server) issueCode(openid, scope string, snapshot bool) string {
	code := rand.Text()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.codes {
		if now.Sub(c.issuedAt) > 2*codeTTL {
			delete(s.codes, k)
		}
	}
	s.codes[code] = &oauthCode{openid: openid, scope: scope, snapshot: snapshot, issuedAt: now}
	return code
}

type oauthAnswer struct {
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	IsSnapshotUser int    `json:"is_snapshotuser,omitempty"`
}

// grantLocked issues a web-page access token (and, when refresh is empty, a refresh token) for g.
func (s *Server) grantLocked(g oauthGrant, refresh string) oauthAnswer {
	now := s.now()
	for k, t := range s.oauthTokens {
		if now.Sub(t.expiresAt) > oauthTokenTTL {
			delete(s.oauthTokens, k)
		}
	}
	tok := newSecret()
	at := g
	at.expiresAt = now.Add(oauthTokenTTL)
	s.oauthTokens[tok] = &at
	if refresh == "" {
		refresh = newSecret()
		rt := g
		rt.expiresAt = now.Add(refreshTokenTTL)
		s.refreshes[refresh] = &rt
	}
	a := oauthAnswer{
		AccessToken:  tok,
		ExpiresIn:    int(oauthTokenTTL.Seconds()),
		RefreshToken: refresh,
		OpenID:       g.openid,
		Scope:        g.scope,
	}
	if g.snapshot {
		a.IsSnapshotUser = 1
	}
	return a
}

func (s *Server) oauthAccessToken(r *http.Request) reply {
	q := r.URL.Query()
	if rep, ok := s.checkApp(q, true); !ok {
		return rep
	}
	if q.Get("grant_type") != "authorization_code" {
		return failCode(40002)
	}
	code := q.Get("code")
	if code == "" {
		return failCode(41008)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[code]
	switch {
	case c == nil || s.now().Sub(c.issuedAt) > codeTTL:
		return failCode(40029)
	case c.used:
		return failCode(40163)
	}
	c.used = true
	return ok(s.grantLocked(oauthGrant{openid: c.openid, scope: c.scope, snapshot: c.snapshot}, ""))
}

func (s *Server) oauthRefresh(r *http.Request) reply {
	q := r.URL.Query()
	if rep, ok := s.checkApp(q, false); !ok {
		return rep
	}
	if q.Get("grant_type") != "refresh_token" {
		return failCode(40002)
	}
	rt := q.Get("refresh_token")
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refreshes[rt]
	if g == nil || !s.now().Before(g.expiresAt) {
		return failCode(40030)
	}
	return ok(s.grantLocked(*g, rt))
}

func (s *Server) userInfo(r *http.Request) reply {
	q := r.URL.Query()
	tok := q.Get("access_token")
	if tok == "" {
		return failCode(41001)
	}
	s.mu.Lock()
	g := s.oauthTokens[tok]
	now := s.now()
	s.mu.Unlock()
	switch {
	case g == nil:
		return failCode(40001)
	case !now.Before(g.expiresAt):
		return failCode(42001)
	case q.Get("openid") != g.openid:
		return failCode(40003)
	case g.scope != "snsapi_userinfo":
		return failCode(48001)
	}
	return ok(map[string]any{
		"openid":     g.openid,
		"nickname":   "微信用户",
		"sex":        0,
		"province":   "",
		"city":       "",
		"country":    "",
		"headimgurl": "",
		"privilege":  []string{},
	})
}
