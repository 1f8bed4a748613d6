package fakewechat

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// stableRotateAhead is how long before expiry a normal-mode cgi-bin/stable_token call gets a new token
// instead of the current one (WeChat: 5 minutes); the old token stays valid until it expires.
const stableRotateAhead = 5 * time.Minute

// stableToken plays cgi-bin/stable_token: POST {"grant_type":"client_credential","appid","secret",
// "force_refresh"}. In normal mode it answers the current token with its remaining expires_in, and a
// new one only when there is none, it was revoked or expired, or it is within its last 5 minutes (at
// most half its life). force_refresh: true revokes the current token (it answers 40001 from then on)
// and issues a new one. Tokens of cgi-bin/token are separate and never affected.
func (s *Server) stableToken(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return failCode(43002)
	}
	raw, rep, valid := readJSON(r)
	if !valid {
		return rep
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return failCode(47001)
	}
	if req.GrantType != "client_credential" {
		return failCode(40002)
	}
	if rep, valid := s.checkApp(url.Values{"appid": {req.AppID}, "secret": {req.Secret}}, true); !valid {
		return rep
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.ForceRefresh {
		s.stableForced++
	} else {
		s.stableNormal++
	}
	cur := s.tokens[s.stable]
	if !req.ForceRefresh && cur != nil && !cur.revoked && cur.expiresAt.Sub(now) > min(stableRotateAhead, s.cfg.TokenTTL/2) {
		return ok(tokenAnswer(s.stable, cur.expiresAt.Sub(now)))
	}
	if req.ForceRefresh && cur != nil {
		cur.revoked = true
	}
	s.stable = s.issueTokenLocked(now)
	return ok(tokenAnswer(s.stable, s.cfg.TokenTTL))
}

func tokenAnswer(tok string, ttl time.Duration) map[string]any {
	return map[string]any{"access_token": tok, "expires_in": int(ttl / time.Second)}
}

// issueTokenLocked issues a new access token valid for TokenTTL. Expired tokens are kept a while, so
// that they answer 42001.
func (s *Server) issueTokenLocked(now time.Time) string {
	for k, t := range s.tokens {
		if now.Sub(t.expiresAt) > s.cfg.TokenTTL {
			delete(s.tokens, k)
		}
	}
	tok := newSecret()
	s.tokens[tok] = &apiToken{expiresAt: now.Add(s.cfg.TokenTTL)}
	return tok
}

// StableTokenCalls counts the cgi-bin/stable_token requests that the fake answered itself (injected
// failures and malformed requests not included), in normal mode and with force_refresh: true.
func (s *Server) StableTokenCalls() (normal, forced int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stableNormal, s.stableForced
}
