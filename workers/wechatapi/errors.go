package wechatapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an answer from WeChat with a non-zero errcode.
type Error struct {
	Endpoint string // e.g. "message/custom/send"
	Code     int    // errcode
	Msg      string // errmsg, as WeChat sent it
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: errcode %d: %s", e.Endpoint, e.Code, e.Msg)
}

// StatusError is an HTTP answer outside 2xx.
type StatusError struct {
	Endpoint   string
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: http status %d", e.Endpoint, e.StatusCode)
}

// WeChat errcodes that callers branch on.
const (
	CodeSystemBusy        = -1
	CodeInvalidCredential = 40001 // access token invalid or not the latest
	CodeInvalidOpenID     = 40003
	CodeInvalidAppID      = 40013
	CodeInvalidToken      = 40014 // invalid access_token
	CodeInvalidCode       = 40029 // OAuth code unknown or expired
	CodeInvalidAppSecret  = 40125
	CodeCodeUsed          = 40163 // OAuth code already exchanged
	CodeTokenExpired      = 42001
	CodeNotSubscribed     = 43004
	CodeDailyQuota        = 45009
	CodeMinuteQuota       = 45011
	CodeReplyWindowPassed = 45015 // 48 h reply window passed, or the user unsubscribed
)

// IsCode reports whether err is, or wraps, an *Error with one of codes.
func IsCode(err error, codes ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// transientCodes are errcodes that a later retry may cure: system busy, quotas that reset, and invalid
// tokens (a later forced refresh replaces the token once the rate limit allows it).
var transientCodes = map[int]bool{
	CodeSystemBusy:        true,
	CodeInvalidCredential: true,
	CodeInvalidToken:      true,
	CodeTokenExpired:      true,
	CodeDailyQuota:        true,
	CodeMinuteQuota:       true,
}

// Permanent reports whether retrying the same call cannot succeed, so a message should be dead-lettered
// rather than redelivered. It is true for every WeChat errcode except the transient ones (-1 system busy,
// 40001/40014/42001 invalid token, 45009/45011 quotas): e.g. 45015 reply window passed, 40003 bad openid,
// 43004 not subscribed, 40029/40163 bad or used OAuth code. 40013/40125 (bad AppID/AppSecret, from the
// token refresh) are permanent for the message too, though they mean the configuration is wrong: fix it
// and replay the dead letters. Permanent is also true for HTTP 4xx answers other than 408 and 429.
// It is false for HTTP 5xx, timeouts, cancellation, network errors and undecodable answers.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return !transientCodes[e.Code]
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 400 && se.StatusCode < 500 &&
			se.StatusCode != http.StatusRequestTimeout && se.StatusCode != http.StatusTooManyRequests
	}
	return false
}
