package workers

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// rpc adapts a typed operation to an events.RPCHandler.
func rpc[Req, Resp any](f func(context.Context, Req) (Resp, error)) events.RPCHandler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var req Req
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, rpcErr(http.StatusBadRequest, "bad_request", "请求格式不对，请重新打开页面。")
		}
		return f(ctx, req)
	}
}

// errEmployeeLocked refuses every bind attempt for a locked employee.
func errEmployeeLocked() *events.RPCError {
	return rpcErr(http.StatusTooManyRequests, "locked", "错误次数太多，这个工号已锁定 15 分钟，请稍后再试。")
}

// errOpenIDLocked refuses every bind attempt from a locked openid.
func errOpenIDLocked() *events.RPCError {
	return rpcErr(http.StatusTooManyRequests, "openid_locked", "绑定码错误次数太多，请 1 小时后再试。")
}

const msgWrongBindCode = "工号或绑定码不对，请核对后再试。错误太多会被暂时锁定。"

func rpcErr(status int, code, msg string) *events.RPCError {
	return &events.RPCError{Status: status, Code: code, Message: msg}
}

// The page to show after OAuth, carried inside the signed state.
const (
	nextBind = "bind"
	nextScan = "scan"
)

// bindStart returns the authorize URL with a fresh signed state (not a
// cookie: the WeChat webview may drop cookies). It writes nothing: a state
// is remembered only once it comes back with a code that WeChat accepts.
func (s *Service) bindStart(_ context.Context, req events.BindStartRequest) (events.BindStartResponse, error) {
	next := nextBind
	if req.Next == nextScan {
		next = nextScan
	}
	state := s.states.issue(next, s.now().Add(s.cfg.StateTTL))
	u := wechatapi.AuthorizeURL(s.cfg.OAuthBase, s.cfg.AppID, s.cfg.PublicURL+"/oauth/callback", s.cfg.Scope, state)
	return events.BindStartResponse{AuthorizeURL: u}, nil
}

// oauthCallback checks the state, exchanges the code for the openid and
// opens a bind session. A state is used once and tied to the code it came
// back with (SPEC §6): WeChat sometimes redirects twice, and the second
// exchange of a code would answer 40163, so a second call with the same code
// and the same state gets the same session; the state with another code, or
// the code with another state, is refused, and so are a forged or expired
// state and a snapshot-mode user. Nothing is written unless WeChat accepted
// the code. Calls with one code are serialised.
func (s *Service) oauthCallback(ctx context.Context, req events.OAuthCallbackRequest) (events.SessionResponse, error) {
	if req.Code == "" {
		return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "missing_code", "没有拿到微信授权，请重新打开绑定页面。")
	}
	if len(req.Code) > maxTokenLen {
		return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "code_invalid", "微信授权码无效，请重新打开绑定页面。")
	}
	next, expires, ok := s.states.verify(req.State)
	if !ok {
		s.log.Info("oauth refused", "reason", "state_invalid")
		return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "state_invalid", "这个链接无效，请重新打开绑定页面。")
	}
	now := s.now()
	if !now.Before(expires) {
		return events.SessionResponse{}, rpcErr(http.StatusGone, "state_expired", "页面已过期，请重新打开绑定页面。")
	}
	unlock := s.codeLocks.lock(req.Code)
	defer unlock()
	use, err := s.db.OAuthUseByState(req.State, now)
	switch {
	case err == nil && subtle.ConstantTimeCompare([]byte(use.Code), []byte(req.Code)) == 1:
		return s.sessionResponse(use.Session, next, now) // WeChat's second redirect
	case err == nil:
		s.log.Info("oauth refused", "reason", "state_used")
		return events.SessionResponse{}, errStateUsed()
	case !errors.Is(err, store.ErrNotFound):
		return events.SessionResponse{}, fmt.Errorf("workers: oauth use of state: %w", err)
	}
	if _, err := s.db.OAuthCodeState(req.Code, now); err == nil {
		s.log.Info("oauth refused", "reason", "code_used")
		return events.SessionResponse{}, errCodeUsed()
	} else if !errors.Is(err, store.ErrNotFound) {
		return events.SessionResponse{}, fmt.Errorf("workers: oauth code state: %w", err)
	}
	tok, err := s.wx.OAuthExchange(ctx, req.Code)
	switch {
	case wechatapi.IsCode(err, wechatapi.CodeInvalidCode):
		return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "code_invalid", "微信授权码无效，请重新打开绑定页面。")
	case wechatapi.IsCode(err, wechatapi.CodeCodeUsed):
		return events.SessionResponse{}, errCodeUsed()
	case err != nil:
		s.log.Warn("oauth exchange", "err", err)
		return events.SessionResponse{}, rpcErr(http.StatusServiceUnavailable, "wechat_unavailable", "暂时连不上微信，请稍后再试。")
	case tok.IsSnapshotUser:
		return events.SessionResponse{}, rpcErr(http.StatusForbidden, "snapshot_user", "请在微信里关注公众号后，从菜单打开绑定页面。")
	case tok.OpenID == "":
		return events.SessionResponse{}, rpcErr(http.StatusBadGateway, "no_openid", "微信没有返回身份信息，请重试。")
	}
	sess := store.Session{Token: events.RandomHex(24), OpenID: tok.OpenID, UnionID: tok.UnionID, Expires: now.Add(s.cfg.SessionTTL)}
	use = store.OAuthUse{State: req.State, Code: req.Code, Session: sess.Token, Next: next, Expires: expires}
	if err := s.db.RecordOAuthUse(use, sess, now); errors.Is(err, store.ErrConflict) {
		s.log.Info("oauth refused", "reason", "state_used", "openid", sess.OpenID)
		return events.SessionResponse{}, errStateUsed() // the same state came back with another code meanwhile
	} else if err != nil {
		return events.SessionResponse{}, fmt.Errorf("workers: record oauth use: %w", err)
	}
	return s.sessionAnswer(sess, next), nil
}

func errStateUsed() *events.RPCError {
	return rpcErr(http.StatusBadRequest, "state_used", "这个链接已经用过了，请从公众号菜单重新打开绑定页面。")
}

func errCodeUsed() *events.RPCError {
	return rpcErr(http.StatusBadRequest, "code_used", "微信授权码已经用过，请从公众号菜单重新打开绑定页面。")
}

// sessionResponse answers a repeated redirect with the session it opened.
func (s *Service) sessionResponse(token, next string, now time.Time) (events.SessionResponse, error) {
	sess, err := s.db.Session(token, now)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired):
		return events.SessionResponse{}, rpcErr(http.StatusGone, "session_expired", "页面已过期，请从公众号菜单重新打开。")
	case err != nil:
		return events.SessionResponse{}, fmt.Errorf("workers: session: %w", err)
	}
	return s.sessionAnswer(sess, next), nil
}

func (s *Service) sessionAnswer(sess store.Session, next string) events.SessionResponse {
	resp := events.SessionResponse{Session: sess.Token, Next: next}
	if b, err := s.db.BindingByOpenID(sess.OpenID); err == nil && b.State == store.StateActive {
		resp.Bound, resp.EmployeeNo, resp.Name = true, b.EmployeeNo, b.Name
	}
	return resp
}

// session resolves a page session token to its openid.
func (s *Service) session(token string) (store.Session, error) {
	if token == "" || len(token) > maxTokenLen {
		return store.Session{}, rpcErr(http.StatusBadRequest, "session_invalid", "页面无效，请从菜单重新打开。")
	}
	sess, err := s.db.Session(token, s.now())
	switch {
	case errors.Is(err, store.ErrExpired):
		return sess, rpcErr(http.StatusGone, "session_expired", "页面已过期，请从菜单重新打开。")
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return sess, rpcErr(http.StatusBadRequest, "session_invalid", "页面无效，请从菜单重新打开。")
	case err != nil:
		return sess, fmt.Errorf("workers: session: %w", err)
	}
	return sess, nil
}

// bindSubmit checks employee_no and bind_code and binds the session's
// openid. Wrong codes are limited twice over (store.MaxBindFailures per
// employee, store.MaxOpenIDBindFailures per openid): a locked employee or
// openid is refused, right code or wrong, without the code being looked at
// and without a write. An unknown employee number counts for the openid
// only (no record is made for a number that is not in the directory), and
// gets the same answer as a wrong code. The check, the count and the binding
// are one transaction, so concurrent attempts cannot overrun a limit.
// Refusals are logged with the openid and the employee number, never the
// code.
func (s *Service) bindSubmit(_ context.Context, req events.BindSubmitRequest) (events.BindSubmitResponse, error) {
	emp, code := strings.TrimSpace(req.EmployeeNo), strings.TrimSpace(req.BindCode)
	if emp == "" || code == "" {
		return events.BindSubmitResponse{}, rpcErr(http.StatusBadRequest, "missing_fields", "请填写工号和绑定码。")
	}
	if len(emp) > MaxEmployeeNoLen || len(code) > MaxBindCodeLen {
		return events.BindSubmitResponse{}, rpcErr(http.StatusBadRequest, "too_long",
			fmt.Sprintf("工号和绑定码最长 %d 个字符，请核对后再填。", MaxEmployeeNoLen))
	}
	sess, err := s.session(req.Session)
	if err != nil {
		return events.BindSubmitResponse{}, err
	}
	now := s.now()
	var (
		bound          store.Binding
		wrong, known   bool
		empC, openidC  store.BindCounter
		refused        *events.RPCError
		refusedBecause string
	)
	err = s.db.Update(func(tx *store.Tx) error {
		var err error
		if openidC, err = tx.OpenIDBindCounter(sess.OpenID, now); err != nil {
			return err
		}
		if openidC.Locked(now) {
			refused, refusedBecause = errOpenIDLocked(), "openid_locked"
			return refused // roll back: nothing to write
		}
		if empC, err = tx.EmployeeBindCounter(emp, now); err != nil {
			return err
		}
		if empC.Locked(now) {
			refused, refusedBecause = errEmployeeLocked(), "employee_locked"
			return refused
		}
		staff, err := tx.Staff(emp)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		known = err == nil
		if !known || subtle.ConstantTimeCompare([]byte(staff.BindCode), []byte(code)) != 1 {
			wrong = true
			if openidC, err = tx.CountOpenIDBindFailure(sess.OpenID, now); err != nil {
				return err
			}
			if known {
				if empC, err = tx.CountEmployeeBindFailure(emp, now); err != nil {
					return err
				}
			}
			return nil
		}
		if err := tx.ResetEmployeeBindFailures(emp); err != nil {
			return err
		}
		bound, err = tx.Bind(sess.OpenID, emp, sess.UnionID, now)
		return err
	})
	switch {
	case refused != nil:
		s.log.Warn("bind refused", "reason", refusedBecause, "openid", sess.OpenID, "employee_no", emp,
			"employee_locked_until", empC.LockedUntil, "openid_locked_until", openidC.LockedUntil)
		return events.BindSubmitResponse{}, refused
	case err != nil:
		return events.BindSubmitResponse{}, fmt.Errorf("workers: bind: %w", err)
	case wrong:
		reason := "wrong_code"
		if !known {
			reason = "unknown_employee"
		}
		s.log.Warn("bind refused", "reason", reason, "openid", sess.OpenID, "employee_no", emp,
			"employee_failures", empC.Failures, "openid_failures", openidC.Failures,
			"employee_locked_until", empC.LockedUntil, "openid_locked_until", openidC.LockedUntil)
		switch {
		case openidC.Locked(now):
			return events.BindSubmitResponse{}, errOpenIDLocked()
		case empC.Locked(now):
			return events.BindSubmitResponse{}, errEmployeeLocked()
		}
		// No count of tries left: it would differ between a known and an
		// unknown employee number and so tell which numbers exist.
		return events.BindSubmitResponse{}, rpcErr(http.StatusBadRequest, "wrong_code", msgWrongBindCode)
	}
	s.log.Info("staff bound", "employee_no", bound.EmployeeNo, "openid", bound.OpenID)
	return events.BindSubmitResponse{EmployeeNo: bound.EmployeeNo, Name: bound.Name}, nil
}
