package fakewechat

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

func normPath(path string) string {
	if !strings.HasPrefix(path, "/") {
		return "/" + path
	}
	return path
}

// FailNext makes the next n calls of path (e.g. "/cgi-bin/message/custom/send") answer errcode with
// WeChat's errmsg, before any other check; an errcode from 500 to 599 answers that HTTP status instead. It replaces an
// earlier rule for path; n <= 0 removes it.
func (s *Server) FailNext(path string, errcode int, n int) {
	path = normPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.failNext, path)
		return
	}
	s.failNext[path] = &failRule{code: errcode, n: n}
}

// FailFor makes every call of path for the next d (by the server's clock) answer errcode as FailNext
// does: an outage of that length. It replaces an earlier FailNext or FailFor rule for path; d <= 0
// removes it.
func (s *Server) FailFor(path string, errcode int, d time.Duration) {
	path = normPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.failNext, path)
		return
	}
	s.failNext[path] = &failRule{code: errcode, until: s.now().Add(d)}
}

// SetDelay delays every later call of path by d before it is answered (0 removes the delay). A request
// whose client gives up during the delay gets no answer and has no effect (e.g. custom/send records no
// message), as if WeChat never got it.
func (s *Server) SetDelay(path string, d time.Duration) {
	path = normPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delays, path)
		return
	}
	s.delays[path] = d
}

// RevokeTokens makes every access token issued so far answer 40001; later tokens are valid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// ExpireTokens makes every access token issued so far answer 42001; later tokens are valid.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, t := range s.tokens {
		if t.expiresAt.After(now) {
			t.expiresAt = now
		}
	}
}

// Calls counts the requests of path received so far, failed ones included; a request counts when it
// arrives, before any delay.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[normPath(path)]
}

// CallTimes returns the arrival times (by the server's clock) of the requests of path, oldest first: the
// last 1024 of them, failed ones included.
func (s *Server) CallTimes(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callTimes[normPath(path)])
}

// Sent returns the messages accepted by cgi-bin/message/custom/send, in order.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Menu returns the body of the last accepted cgi-bin/menu/create, or nil.
func (s *Server) Menu() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.menu)
}
