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

// refusal is why a scan was not recorded; "" means it was.
type refusal string

const (
	refusedNotBound    refusal = "not_bound"
	refusedSuspended   refusal = "suspended"
	refusedNotAllowed  refusal = "not_allowed"
	refusedNoStocktake refusal = "no_stocktake"
	refusedBadCode     refusal = "bad_code"
	// refusedNoLocation: only scoped stocktakes are open and the person
	// has no location set.
	refusedNoLocation refusal = "no_location"
	// refusedOutOfScope: no open stocktake covers the person's location.
	refusedOutOfScope refusal = "out_of_scope"
)

// scanOutcome is what one scan did, and the chat reply that says so.
type scanOutcome struct {
	refused  refusal
	message  string
	codeType string
	code     string
	location string
	count    int
	scan     store.Scan // the recorded scan
	unknown  bool       // not in a non-empty item master
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
// stocktake that covers the person's location. Refusals are outcomes, not
// errors; errors are store failures.
func (s *Service) scan(tx *store.Tx, openid, scanType, result string, at time.Time, eventID string) (scanOutcome, error) {
	b, staff, inDirectory, err := tx.BindingAndStaff(openid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return scanOutcome{refused: refusedNotBound, message: msgNotBound(s.cfg.PublicURL)}, nil
	case err != nil:
		return scanOutcome{}, err
	case b.State != store.StateActive:
		return scanOutcome{refused: refusedSuspended, message: msgNotBound(s.cfg.PublicURL)}, nil
	case !inDirectory, !staff.CanScan:
		return scanOutcome{refused: refusedNotAllowed, message: msgNotAllowed}, nil
	}
	codeType, code := ParseScanResult(scanType, result)
	// NUL never comes from WeChat's XML and would split the store's
	// location/sku keys: a code holding it is not a code.
	if code == "" || len(code) > MaxScannedCodeLen || !utf8.ValidString(code) || strings.IndexByte(code, 0) >= 0 {
		return scanOutcome{refused: refusedBadCode, message: msgBadCode}, nil
	}
	if loc, ok := strings.CutPrefix(code, "LOC:"); ok {
		loc = strings.TrimSpace(loc)
		switch {
		case loc == "":
			return scanOutcome{refused: refusedBadCode, message: msgBadCode}, nil
		case len(loc) > MaxLocationLen:
			return scanOutcome{refused: refusedBadCode, message: msgLocationTooLong}, nil
		}
		if err := tx.SetLocation(openid, loc); err != nil {
			return scanOutcome{}, err
		}
		return scanOutcome{message: msgLocation(loc), location: loc}, nil
	}
	loc, err := tx.Location(openid)
	if err != nil {
		return scanOutcome{}, err
	}
	open, err := tx.OpenStocktakes()
	if err != nil {
		return scanOutcome{}, err
	}
	st, ok := store.Covering(open, loc)
	switch {
	case len(open) == 0:
		return scanOutcome{refused: refusedNoStocktake, message: msgNoStocktake}, nil
	case !ok && loc == "":
		return scanOutcome{refused: refusedNoLocation, message: msgNoLocation}, nil
	case !ok:
		return scanOutcome{refused: refusedOutOfScope, message: msgOutOfScope(loc), location: loc}, nil
	}
	r, err := tx.RecordScan(store.Scan{
		StocktakeID: st.ID, OpenID: openid, EmployeeNo: b.EmployeeNo,
		CodeType: codeType, Code: code, Location: loc, Qty: 1, ScannedAt: at, EventID: eventID,
	})
	if err != nil {
		return scanOutcome{}, err
	}
	return scanOutcome{
		message:  msgScanned(itemLabel(r.Scan.Name, code), loc, r.Count, r.Unknown),
		codeType: codeType, code: code, location: loc, count: r.Count, scan: r.Scan, unknown: r.Unknown,
	}, nil
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
	if out.scan.StocktakeID != "" {
		s.notifyScans(out.scan.StocktakeID)
	}
	switch out.refused {
	case "":
	case refusedNotBound, refusedSuspended, refusedNotAllowed:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusForbidden, string(out.refused), out.message)
	case refusedNoStocktake, refusedNoLocation, refusedOutOfScope:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusConflict, string(out.refused), out.message)
	default:
		return events.ScanSubmitResponse{}, rpcErr(http.StatusBadRequest, string(out.refused), out.message)
	}
	resp := events.ScanSubmitResponse{Message: out.message, Code: out.code, CodeType: out.codeType, Location: out.location, Count: out.count}
	if out.count > 0 {
		ps := s.pageScan(out.scan, out.unknown, s.now())
		resp.Scan = &ps
	}
	return resp, nil
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
		resp.Location, _ = tx.Location(sess.OpenID)
		open, err := tx.OpenStocktakes()
		if err != nil {
			return err
		}
		resp.OpenStocktakes = len(open)
		if st, ok := store.Covering(open, resp.Location); ok {
			resp.Stocktake, resp.StocktakeOpen = st.Name, true
		}
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
