package wechatapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OAuth scopes.
const (
	ScopeBase     = "snsapi_base"
	ScopeUserInfo = "snsapi_userinfo"
)

// OAuthToken is the answer of sns/oauth2/access_token and sns/oauth2/refresh_token. Its AccessToken is
// the user's web-page token (for UserInfo), not the account's access token.
type OAuthToken struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	OpenID       string
	Scope        string
	// IsSnapshotUser is true for a user browsing a page in snapshot mode (朋友圈快照页): the openid is
	// a virtual one and must not be bound.
	IsSnapshotUser bool
	UnionID        string
}

type oauthAnswer struct {
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	IsSnapshotUser int    `json:"is_snapshotuser"`
	UnionID        string `json:"unionid"`
}

func (a oauthAnswer) token() OAuthToken {
	return OAuthToken{
		AccessToken:    a.AccessToken,
		ExpiresIn:      time.Duration(a.ExpiresIn) * time.Second,
		RefreshToken:   a.RefreshToken,
		OpenID:         a.OpenID,
		Scope:          a.Scope,
		IsSnapshotUser: a.IsSnapshotUser == 1,
		UnionID:        a.UnionID,
	}
}

// AuthorizeURL returns the OAuth authorize page URL, parameters in the order WeChat requires:
// {oauthBase}/connect/oauth2/authorize?appid=..&redirect_uri=..&response_type=code&scope=..&state=..#wechat_redirect
// with redirect_uri URL-encoded. oauthBase is WXSCAN_OAUTH_BASE (DefaultOAuthBase in production).
func AuthorizeURL(oauthBase, appid, redirectURI, scope, state string) string {
	return strings.TrimRight(oauthBase, "/") + "/connect/oauth2/authorize" +
		"?appid=" + url.QueryEscape(appid) +
		"&redirect_uri=" + url.QueryEscape(redirectURI) +
		"&response_type=code" +
		"&scope=" + url.QueryEscape(scope) +
		"&state=" + url.QueryEscape(state) +
		"#wechat_redirect"
}

// OAuthExchange exchanges an authorize-page code for the user's openid and web-page token. A code works
// once: a second exchange answers errcode 40163 (CodeCodeUsed), an unknown or expired code 40029
// (CodeInvalidCode); both are Permanent. Callers that may see a code twice must remember the first result.
func (c *Client) OAuthExchange(ctx context.Context, code string) (OAuthToken, error) {
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.appSecret},
		"code":       {code},
		"grant_type": {"authorization_code"},
	}
	var out oauthAnswer
	if err := c.call(ctx, http.MethodGet, "sns/oauth2/access_token", q, nil, &out); err != nil {
		return OAuthToken{}, fmt.Errorf("wechatapi: oauth exchange: %w", err)
	}
	if out.OpenID == "" {
		return OAuthToken{}, fmt.Errorf("wechatapi: oauth exchange: answer without openid")
	}
	return out.token(), nil
}

// OAuthRefresh renews a web-page token with its refresh_token (valid 30 days).
func (c *Client) OAuthRefresh(ctx context.Context, refreshToken string) (OAuthToken, error) {
	q := url.Values{
		"appid":         {c.appID},
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	var out oauthAnswer
	if err := c.call(ctx, http.MethodGet, "sns/oauth2/refresh_token", q, nil, &out); err != nil {
		return OAuthToken{}, fmt.Errorf("wechatapi: oauth refresh: %w", err)
	}
	return out.token(), nil
}

// UserInfo is the answer of sns/userinfo.
type UserInfo struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid"`
}

// UserInfo fetches a user's profile with a web-page token of scope snsapi_userinfo. An invalid-token
// errcode here concerns the user's web-page token and does not touch the account's access token.
func (c *Client) UserInfo(ctx context.Context, oauthAccessToken, openid string) (UserInfo, error) {
	q := url.Values{
		"access_token": {oauthAccessToken},
		"openid":       {openid},
		"lang":         {"zh_CN"},
	}
	var out UserInfo
	if err := c.call(ctx, http.MethodGet, "sns/userinfo", q, nil, &out); err != nil {
		return UserInfo{}, fmt.Errorf("wechatapi: user info: %w", err)
	}
	return out, nil
}
