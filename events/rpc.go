package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// The staff pages are served by callback processes, which hold no AppSecret
// and no store: they ask the workers over NATS request/reply. These are the
// operations and their payloads; subjects are wxscan.rpc.<appid>.<op>.
const (
	// OpBindStart creates a single-use OAuth state and returns the
	// authorize URL to redirect to. BindStartRequest → BindStartResponse.
	OpBindStart = "bind.start"
	// OpOAuthCallback checks the state, exchanges the code for the openid
	// (idempotent per code) and opens a page session.
	// OAuthCallbackRequest → SessionResponse.
	OpOAuthCallback = "oauth.callback"
	// OpBindSubmit checks employee_no and bind_code and binds.
	// BindSubmitRequest → BindSubmitResponse.
	OpBindSubmit = "bind.submit"
	// OpScanPage returns the JS-SDK config for the /scan page of a bound
	// session. ScanPageRequest → ScanPageResponse.
	OpScanPage = "scan.page"
	// OpScanSubmit records a scan from the /scan page.
	// ScanSubmitRequest → ScanSubmitResponse.
	OpScanSubmit = "scan.submit"
	// OpScanRecent lists the session's recent scans in the open
	// stocktake(s). ScanRecentRequest → ScanRecentResponse.
	OpScanRecent = "scan.recent"
	// OpScanQty sets the quantity of one of the session's own scans (in an
	// open stocktake, less than 10 minutes old, 1..99999).
	// ScanQtyRequest → ScanChangeResponse.
	OpScanQty = "scan.qty"
	// OpScanUndo cancels one of the session's own scans, under the same
	// rules. ScanUndoRequest → ScanChangeResponse.
	OpScanUndo = "scan.undo"
)

// BindStartRequest starts a bind (or scan-page) OAuth round trip. Next is
// the page to show after it: "bind" (default) or "scan".
type BindStartRequest struct {
	Next string `json:"next,omitempty"`
}

// BindStartResponse carries where to send the browser.
type BindStartResponse struct {
	AuthorizeURL string `json:"authorize_url"`
}

// OAuthCallbackRequest is what WeChat's redirect brought back.
type OAuthCallbackRequest struct {
	Code  string `json:"code"`
	State string `json:"state"`
}

// SessionResponse is a page session for one openid (the hidden form token;
// the WeChat webview may drop cookies, so pages carry it themselves).
type SessionResponse struct {
	Session string `json:"session"`
	Next    string `json:"next"` // "bind" or "scan"
	// Bound is set when this openid is already bound.
	Bound      bool   `json:"bound"`
	EmployeeNo string `json:"employee_no,omitempty"`
	Name       string `json:"name,omitempty"`
}

// BindSubmitRequest is the bind form.
type BindSubmitRequest struct {
	Session    string `json:"session"`
	EmployeeNo string `json:"employee_no"`
	BindCode   string `json:"bind_code"`
}

// BindSubmitResponse is a successful binding.
type BindSubmitResponse struct {
	EmployeeNo string `json:"employee_no"`
	Name       string `json:"name"`
}

// ScanPageRequest asks for the /scan page's JS-SDK config.
type ScanPageRequest struct {
	Session string `json:"session"`
	// URL is the page's full URL as the browser sees it (for wx.config).
	URL string `json:"url"`
}

// ScanPageResponse is wx.config's parameters and who is scanning.
type ScanPageResponse struct {
	AppID      string `json:"appId"`
	Timestamp  int64  `json:"timestamp"`
	NonceStr   string `json:"nonceStr"`
	Signature  string `json:"signature"`
	EmployeeNo string `json:"employee_no"`
	Name       string `json:"name"`
	Stocktake  string `json:"stocktake,omitempty"` // the name of the open stocktake that covers Location
	Location   string `json:"location,omitempty"`
	// StocktakeOpen says whether an open stocktake covers the person's
	// current location, so that a scan would be recorded.
	StocktakeOpen bool `json:"stocktake_open"`
	// OpenStocktakes is how many stocktakes are open at all: with some
	// open but none covering Location, a location code still helps.
	OpenStocktakes int `json:"open_stocktakes"`
}

// ScanSubmitRequest is one code scanned on the /scan page. ClientID is
// chosen by the page per scan, so a resubmitted scan is recorded once.
type ScanSubmitRequest struct {
	Session  string `json:"session"`
	Result   string `json:"result"` // as wx.scanQRCode returned it, e.g. EAN_13,6901234567892
	ClientID string `json:"client_id"`
}

// ScanSubmitResponse says what the scan did.
type ScanSubmitResponse struct {
	Message  string `json:"message"` // the same text as the chat reply
	Code     string `json:"code,omitempty"`
	CodeType string `json:"code_type,omitempty"`
	Location string `json:"location,omitempty"`
	Count    int    `json:"count,omitempty"` // the person's running count in the stocktake
	// Scan is the recorded scan; nil for a location change.
	Scan *PageScan `json:"scan,omitempty"`
}

// PageScan is one of the person's scans as the /scan page shows it. Label is
// plain text (the item name, else the code): show it as text, never markup.
type PageScan struct {
	Ref       string    `json:"ref"` // for OpScanQty and OpScanUndo
	Code      string    `json:"code"`
	Name      string    `json:"name,omitempty"` // from the item master
	Label     string    `json:"label"`
	Unknown   bool      `json:"unknown,omitempty"` // not in the item master (未登记)
	Location  string    `json:"location,omitempty"`
	Qty       int       `json:"qty"`
	Cancelled bool      `json:"cancelled,omitempty"`
	Editable  bool      `json:"editable"` // qty can be set and the scan undone now
	ScannedAt time.Time `json:"scanned_at"`
}

// ScanRecentRequest asks for the session's latest scans (Limit, default 20,
// at most 100).
type ScanRecentRequest struct {
	Session string `json:"session"`
	Limit   int    `json:"limit,omitempty"`
}

// ScanRecentResponse is the session's latest scans in the open
// stocktake(s), newest first, cancelled ones included and marked.
type ScanRecentResponse struct {
	Scans []PageScan `json:"scans"`
	// Count is the person's running count in the stocktake that covers
	// Location (0 if none does).
	Count    int    `json:"count"`
	Location string `json:"location,omitempty"`
}

// ScanQtyRequest sets the quantity of the session's scan Ref.
type ScanQtyRequest struct {
	Session string `json:"session"`
	Ref     string `json:"ref"`
	Qty     int    `json:"qty"`
}

// ScanUndoRequest cancels the session's scan Ref.
type ScanUndoRequest struct {
	Session string `json:"session"`
	Ref     string `json:"ref"`
}

// ScanChangeResponse is the scan after a change and the person's new
// running count in its stocktake.
type ScanChangeResponse struct {
	Message string   `json:"message"`
	Scan    PageScan `json:"scan"`
	Count   int      `json:"count"`
}

// RPCError is a refusal the pages show as is: an HTTP status (4xx for the
// user's mistakes, 503 when the workers cannot be reached), a stable code
// for programs, and a short Chinese message for the person.
type RPCError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// rpcEnvelope is the reply of every operation: a result or an error.
type rpcEnvelope struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *RPCError       `json:"error,omitempty"`
}

// errInternal is what a caller sees of a failure inside an operation.
var errInternal = &RPCError{Status: http.StatusInternalServerError, Code: "internal", Message: "系统出了点问题，请稍后再试。"}

// ErrNoWorkers means no workers process answered: the pages answer 503.
var ErrNoWorkers = errors.New("no workers process answered")

func (b *Bus) rpcSubject(op string) string { return "wxscan.rpc." + token(b.opts.AppID) + "." + op }

// Call runs op on a workers process and decodes its result into resp. It
// returns an *RPCError for a refusal, ErrNoWorkers (wrapped) when nobody
// answered within ctx or 5 s, or another error.
func (b *Bus) Call(ctx context.Context, op string, req, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("events: encode %s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := b.nc.RequestWithContext(ctx, b.rpcSubject(op), data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || !b.nc.IsConnected() {
			return fmt.Errorf("events: call %s: %w: %v", op, ErrNoWorkers, err)
		}
		return fmt.Errorf("events: call %s: %w", op, err)
	}
	var env rpcEnvelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return fmt.Errorf("events: decode %s answer: %w", op, err)
	}
	if env.Error != nil {
		return env.Error
	}
	if resp != nil {
		if err := json.Unmarshal(env.Result, resp); err != nil {
			return fmt.Errorf("events: decode %s result: %w", op, err)
		}
	}
	return nil
}

// RPCHandler serves one operation: it decodes its request from req and
// returns a result to encode, or an error (an *RPCError is passed to the
// caller as is; any other error becomes a 500 whose text is not shown).
type RPCHandler func(ctx context.Context, req json.RawMessage) (any, error)

// Serve answers op with h in the "workers" queue group, so that one workers
// process answers each call. Stop with the returned subscription's Drain.
func (b *Bus) Serve(op string, h RPCHandler) (*nats.Subscription, error) {
	sub, err := b.nc.QueueSubscribe(b.rpcSubject(op), "workers", func(m *nats.Msg) {
		env := rpcEnvelope{}
		res, err := func() (res any, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return h(context.Background(), m.Data)
		}()
		var rerr *RPCError
		switch {
		case errors.As(err, &rerr):
			env.Error = rerr
		case err != nil:
			b.log.Error("rpc failed", "op", op, "err", err)
			env.Error = errInternal
		default:
			if env.Result, err = json.Marshal(res); err != nil {
				env.Error = errInternal
			}
		}
		out, _ := json.Marshal(env)
		if err := m.Respond(out); err != nil {
			b.log.Warn("rpc respond", "op", op, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("events: serve %s: %w", op, err)
	}
	return sub, nil
}
