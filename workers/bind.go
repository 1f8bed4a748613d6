package workers

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

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

// errLocked refuses every bind attempt for a locked employee.
func errLocked() *events.RPCError {
	return rpcErr(http.StatusTooManyRequests, "locked", "错误次数太多，这个工号已锁定 15 分钟，请稍后再试。")
}

func rpcErr(status int, code, msg string) *events.RPCError {
	return &events.RPCError{Status: status, Code: code, Message: msg}
}

// States carry the page to show after OAuth in their first letter.
const (
	nextBind = "bind"
	nextScan = "scan"
)

// bindStart creates a single-use OAuth state (kept server-side, not in a
// cookie: the WeChat webview may drop cookies) and returns the authorize URL.
func (s *Service) bindStart(_ context.Context, req events.BindStartRequest) (events.BindStartResponse, error) {
	prefix := "b"
	if req.Next == nextScan {
		prefix = "s"
	}
	state := prefix + events.RandomHex(16)
	if err := s.db.PutOAuthState(state, s.now().Add(s.cfg.StateTTL)); err != nil {
		return events.BindStartResponse{}, fmt.Errorf("workers: bind start: %w", err)
	}
	u := wechatapi.AuthorizeURL(s.cfg.OAuthBase, s.cfg.AppID, s.cfg.PublicURL+"/oauth/callback", s.cfg.Scope, state)
	return events.BindStartResponse{AuthorizeURL: u}, nil
}

// oauthCallback checks the state and exchanges the code for the openid. It
// is idempotent per code: WeChat sometimes redirects twice, and the second
// exchange of a code would answer 40163, so a code's openid is remembered
// for a few minutes and a repeated code gets a session without a new
// exchange (its state was used by the first redirect).
func (s *Service) oauthCallback(ctx context.Context, req events.OAuthCallbackRequest) (events.SessionResponse, error) {
	if req.Code == "" {
		return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "missing_code", "没有拿到微信授权，请重新打开绑定页面。")
	}
	next := nextBind
	if strings.HasPrefix(req.State, "s") {
		next = nextScan
	}
	now := s.now()
	var unionid string
	openid, err := s.db.OAuthCode(req.Code, now)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.db.TakeOAuthState(req.State, now); err != nil {
			switch {
			case errors.Is(err, store.ErrExpired):
				return events.SessionResponse{}, rpcErr(http.StatusGone, "state_expired", "页面已过期，请重新打开绑定页面。")
			case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
				return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "state_invalid", "这个链接已经用过或无效，请重新打开绑定页面。")
			default:
				return events.SessionResponse{}, fmt.Errorf("workers: take oauth state: %w", err)
			}
		}
		tok, err := s.wx.OAuthExchange(ctx, req.Code)
		switch {
		case wechatapi.IsCode(err, wechatapi.CodeInvalidCode):
			return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "code_invalid", "微信授权码无效，请重新打开绑定页面。")
		case wechatapi.IsCode(err, wechatapi.CodeCodeUsed):
			return events.SessionResponse{}, rpcErr(http.StatusBadRequest, "code_used", "微信授权码已经用过，请重新打开绑定页面。")
		case err != nil:
			s.log.Warn("oauth exchange", "err", err)
			return events.SessionResponse{}, rpcErr(http.StatusServiceUnavailable, "wechat_unavailable", "暂时连不上微信，请稍后再试。")
		case tok.IsSnapshotUser:
			return events.SessionResponse{}, rpcErr(http.StatusForbidden, "snapshot_user", "请在微信里关注公众号后，从菜单打开绑定页面。")
		case tok.OpenID == "":
			return events.SessionResponse{}, rpcErr(http.StatusBadGateway, "no_openid", "微信没有返回身份信息，请重试。")
		}
		openid, unionid = tok.OpenID, tok.UnionID
		if err := s.db.PutOAuthCode(req.Code, openid, now.Add(s.cfg.CodeTTL)); err != nil {
			return events.SessionResponse{}, fmt.Errorf("workers: remember oauth code: %w", err)
		}
	} else if err != nil {
		return events.SessionResponse{}, fmt.Errorf("workers: oauth code: %w", err)
	}
	sess := store.Session{Token: events.RandomHex(24), OpenID: openid, UnionID: unionid, Expires: now.Add(s.cfg.SessionTTL)}
	if err := s.db.PutSession(sess); err != nil {
		return events.SessionResponse{}, fmt.Errorf("workers: put session: %w", err)
	}
	resp := events.SessionResponse{Session: sess.Token, Next: next}
	if b, err := s.db.BindingByOpenID(openid); err == nil && b.State == store.StateActive {
		resp.Bound, resp.EmployeeNo, resp.Name = true, b.EmployeeNo, b.Name
	}
	return resp, nil
}

// session resolves a page session token to its openid.
func (s *Service) session(token string) (store.Session, error) {
	if token == "" {
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
// openid. After store.MaxBindFailures wrong codes for one employee, every
// attempt for that employee, right or wrong, is refused for
// store.BindLockout. A wrong code and an unknown employee get the same
// answer, so the form does not tell which employee numbers exist.
func (s *Service) bindSubmit(_ context.Context, req events.BindSubmitRequest) (events.BindSubmitResponse, error) {
	emp, code := strings.TrimSpace(req.EmployeeNo), strings.TrimSpace(req.BindCode)
	if emp == "" || code == "" {
		return events.BindSubmitResponse{}, rpcErr(http.StatusBadRequest, "missing_fields", "请填写工号和绑定码。")
	}
	sess, err := s.session(req.Session)
	if err != nil {
		return events.BindSubmitResponse{}, err
	}
	now := s.now()
	if _, locked, err := s.db.BindLocked(emp, now); err != nil {
		return events.BindSubmitResponse{}, fmt.Errorf("workers: bind locked: %w", err)
	} else if locked {
		return events.BindSubmitResponse{}, errLocked()
	}
	staff, err := s.db.Staff(emp)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return events.BindSubmitResponse{}, fmt.Errorf("workers: staff: %w", err)
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(staff.BindCode), []byte(code)) != 1 {
		n, _, ferr := s.db.RecordBindFailure(emp, now)
		if ferr != nil {
			return events.BindSubmitResponse{}, fmt.Errorf("workers: record bind failure: %w", ferr)
		}
		if n >= store.MaxBindFailures {
			return events.BindSubmitResponse{}, errLocked()
		}
		return events.BindSubmitResponse{}, rpcErr(http.StatusBadRequest, "wrong_code",
			fmt.Sprintf("工号或绑定码不对，还可以再试 %d 次。", store.MaxBindFailures-n))
	}
	if err := s.db.ResetBindFailures(emp); err != nil {
		return events.BindSubmitResponse{}, fmt.Errorf("workers: reset bind failures: %w", err)
	}
	b, err := s.db.Bind(sess.OpenID, emp, sess.UnionID, now)
	if err != nil {
		return events.BindSubmitResponse{}, fmt.Errorf("workers: bind: %w", err)
	}
	s.log.Info("staff bound", "employee_no", b.EmployeeNo)
	return events.BindSubmitResponse{EmployeeNo: b.EmployeeNo, Name: b.Name}, nil
}
