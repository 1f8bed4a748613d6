package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
)

// maxCodeLen bounds a scanned code; longer ones are refused, not stored.
const maxCodeLen = 256

// refusal is why a scan was not recorded; "" means it was.
type refusal string

const (
	refusedNotBound    refusal = "not_bound"
	refusedSuspended   refusal = "suspended"
	refusedNotAllowed  refusal = "not_allowed"
	refusedNoStocktake refusal = "no_stocktake"
	refusedBadCode     refusal = "bad_code"
)

// scanOutcome is what one scan did, and the chat reply that says so.
type scanOutcome struct {
	refused  refusal
	message  string
	codeType string
	code     string
	location string
	count    int
}

// ParseScanResult splits WeChat's ScanResult: "EAN_13,6901234567892" is
// type EAN_13 and code 6901234567892; a result without a comma has type
// scanType and the whole result as its code.
func ParseScanResult(scanType, result string) (codeType, code string) {
	result = strings.TrimSpace(result)
	if i := strings.IndexByte(result, ','); i >= 0 {
		return strings.TrimSpace(result[:i]), strings.TrimSpace(result[i+1:])
	}
	return scanType, result
}

// scan applies one scanned result for openid inside tx: a LOC: code sets
// the person's location, any other code is recorded as a scan of the open
// stocktake. Refusals are outcomes, not errors; errors are store failures.
func (s *Service) scan(tx *store.Tx, openid, scanType, result string, at time.Time, eventID string) (scanOutcome, error) {
	b, err := tx.BindingByOpenID(openid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return scanOutcome{refused: refusedNotBound, message: msgNotBound(s.cfg.PublicURL)}, nil
	case err != nil:
		return scanOutcome{}, err
	case b.State != store.StateActive:
		return scanOutcome{refused: refusedSuspended, message: msgNotBound(s.cfg.PublicURL)}, nil
	}
	staff, err := tx.Staff(b.EmployeeNo)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return scanOutcome{refused: refusedNotAllowed, message: msgNotAllowed}, nil
	case err != nil:
		return scanOutcome{}, err
	case !staff.CanScan:
		return scanOutcome{refused: refusedNotAllowed, message: msgNotAllowed}, nil
	}
	codeType, code := ParseScanResult(scanType, result)
	if code == "" || len(code) > maxCodeLen || !utf8.ValidString(code) {
		return scanOutcome{refused: refusedBadCode, message: msgBadCode}, nil
	}
	if loc, ok := strings.CutPrefix(code, "LOC:"); ok {
		loc = strings.TrimSpace(loc)
		if loc == "" {
			return scanOutcome{refused: refusedBadCode, message: msgBadCode}, nil
		}
		if err := tx.SetLocation(openid, loc); err != nil {
			return scanOutcome{}, err
		}
		return scanOutcome{message: msgLocation(loc), location: loc}, nil
	}
	st, err := tx.OpenStocktake()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return scanOutcome{refused: refusedNoStocktake, message: msgNoStocktake}, nil
	case err != nil:
		return scanOutcome{}, err
	}
	loc, err := tx.Location(openid)
	if err != nil {
		return scanOutcome{}, err
	}
	n, err := tx.RecordScan(store.Scan{
		StocktakeID: st.ID, OpenID: openid, EmployeeNo: b.EmployeeNo,
		CodeType: codeType, Code: code, Location: loc, Qty: 1, ScannedAt: at, EventID: eventID,
	})
	if err != nil {
		return scanOutcome{}, err
	}
	return scanOutcome{message: msgScanned(code, loc, n), codeType: codeType, code: code, location: loc, count: n}, nil
}

// scanSubmit records a scan from the /scan page for a bound session. It is
// idempotent on (openid, client_id): a resubmitted scan records nothing new.
func (s *Service) scanSubmit(ctx context.Context, req events.ScanSubmitRequest) (events.ScanSubmitResponse, error) {
	if strings.TrimSpace(req.Result) == "" || req.ClientID == "" || len(req.ClientID) > 64 {
		return events.ScanSubmitResponse{}, rpcErr(http.StatusBadRequest, "bad_request", "没有收到条码，请重新扫描。")
	}
	if _, code := ParseScanResult("", req.Result); len(req.Result) > MaxScanResultLen || len(code) > MaxScannedCodeLen {
		return events.ScanSubmitResponse{}, rpcErr(http.StatusBadRequest, "too_long", "条码太长了，无法记录。")
	} else if loc, ok := strings.CutPrefix(code, "LOC:"); ok && len(strings.TrimSpace(loc)) > MaxLocationLen {
		return events.ScanSubmitResponse{}, rpcErr(http.StatusBadRequest, "too_long", "库位码太长了，无法记录。")
	}
	sess, err := s.session(req.Session)
	if err != nil {
		return events.ScanSubmitResponse{}, err
	}
	h := sha256.Sum256([]byte(sess.OpenID + "\x00" + req.ClientID))
	id := "p" + hex.EncodeToString(h[:16])
	var out scanOutcome
	var dup bool
	err = s.db.Update(func(tx *store.Tx) error {
		done, err := tx.Processed(id)
		if err != nil || done {
			dup = done
			return err
		}
		if out, err = s.scan(tx, sess.OpenID, "", req.Result, s.now().UTC(), id); err != nil {
			return err
		}
		if out.refused != "" {
			return nil // nothing recorded: a retry after fixing the cause may record it
		}
		return tx.MarkProcessed(id, s.now())
	})
	if err != nil {
		return events.ScanSubmitResponse{}, fmt.Errorf("workers: page scan: %w", err)
	}
	if dup {
		return events.ScanSubmitResponse{Message: "这次扫码已经记录过了。"}, nil
	}
	s.metrics.countScan(out)
	switch out.refused {
	case "":
	case refusedNotBound, refusedSuspended, refusedNotAllowed:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusForbidden, string(out.refused), out.message)
	case refusedNoStocktake:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusConflict, string(out.refused), out.message)
	default:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusBadRequest, string(out.refused), out.message)
	}
	return events.ScanSubmitResponse{Message: out.message, Code: out.code, CodeType: out.codeType, Location: out.location, Count: out.count}, nil
}

// scanPage returns wx.config's values for the /scan page of a bound session.
func (s *Service) scanPage(ctx context.Context, req events.ScanPageRequest) (events.ScanPageResponse, error) {
	sess, err := s.session(req.Session)
	if err != nil {
		return events.ScanPageResponse{}, err
	}
	var resp events.ScanPageResponse
	err = s.db.View(func(tx *store.Tx) error {
		b, err := tx.BindingByOpenID(sess.OpenID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && b.State != store.StateActive) {
			return rpcErr(http.StatusForbidden, string(refusedNotBound), msgNotBound(s.cfg.PublicURL))
		}
		if err != nil {
			return err
		}
		resp.EmployeeNo, resp.Name = b.EmployeeNo, b.Name
		if st, err := tx.OpenStocktake(); err == nil {
			resp.Stocktake = st.Name
		}
		resp.Location, _ = tx.Location(sess.OpenID)
		return nil
	})
	if err != nil {
		return resp, err
	}
	cfg, err := s.wx.JSConfig(ctx, req.URL)
	if err != nil {
		s.log.Warn("js-sdk config", "err", err)
		return resp, rpcErr(http.StatusServiceUnavailable, "wechat_unavailable", "暂时连不上微信，请稍后再试。")
	}
	resp.AppID, resp.Timestamp, resp.NonceStr, resp.Signature = cfg.AppID, cfg.Timestamp, cfg.NonceStr, cfg.Signature
	return resp, nil
}
