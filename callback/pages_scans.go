package callback

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wxscan/wxscan/events"
)

// Refusals of the /api/scans requests made here, before any call to the
// workers.
var (
	errScanBadJSON        = pageRefusal(http.StatusBadRequest, "bad_json", "提交的内容无法识别，请刷新页面后重试。")
	errScanSessionMissing = pageRefusal(http.StatusBadRequest, "session_missing", "页面已失效，请从公众号菜单重新打开扫码页。")
	errScanSessionInvalid = pageRefusal(http.StatusBadRequest, "session_invalid", "页面无效，请从公众号菜单重新打开扫码页。")
	errScanRefMissing     = pageRefusal(http.StatusBadRequest, "bad_request", "没有指明要改哪一次扫码，请刷新页面。")
)

// decodeScanJSON reads one JSON body of at most MaxScanBodyBytes into v.
// Its error is a refusal (400 bad_json) or wraps errTooLarge (413).
func decodeScanJSON(w http.ResponseWriter, r *http.Request, what string, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxScanBodyBytes))
	if err := dec.Decode(v); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return fmt.Errorf("%w: %s is over %d bytes", errTooLarge, what, MaxScanBodyBytes)
		}
		return errScanBadJSON
	}
	return nil
}

// checkScanSession refuses a missing or over-long session token.
func checkScanSession(s string) error {
	switch {
	case s == "":
		return errScanSessionMissing
	case len(s) > pagesMaxToken:
		return errScanSessionInvalid
	}
	return nil
}

// serveScanRecent is GET /api/scans?s=session: the session's latest scans
// in the open stocktake(s), newest first, whichever way they were made
// (events.ScanRecentResponse). It changes nothing.
func (p *pagesHandler) serveScanRecent(w http.ResponseWriter, r *http.Request) {
	req := events.ScanRecentRequest{Session: r.URL.Query().Get("s")}
	if err := checkScanSession(req.Session); err != nil {
		p.errorJSON(w, r, events.OpScanRecent, err)
		return
	}
	var resp events.ScanRecentResponse
	if err := p.call(r.Context(), events.OpScanRecent, req, &resp); err != nil {
		p.errorJSON(w, r, events.OpScanRecent, pageOpenRefusal(err))
		return
	}
	if resp.Scans == nil {
		resp.Scans = []events.PageScan{}
	}
	pageJSON(w, http.StatusOK, resp)
}

// serveScanSubmit is POST /api/scans, JSON in and out. It is idempotent on
// the body's client_id (the workers record a resubmitted scan once).
func (p *pagesHandler) serveScanSubmit(w http.ResponseWriter, r *http.Request) {
	var req events.ScanSubmitRequest
	if err := decodeScanJSON(w, r, "scan", &req); err != nil {
		p.errorJSON(w, r, events.OpScanSubmit, err)
		return
	}
	req.Result = strings.TrimSpace(req.Result)
	var err error
	switch {
	case req.Session == "" || len(req.Session) > pagesMaxToken:
		err = checkScanSession(req.Session)
	case req.Result == "":
		err = pageRefusal(http.StatusBadRequest, "result_missing", "没有读到条码，请再扫一次。")
	case len(req.Result) > pagesMaxScanResult || len(req.ClientID) > pagesMaxClientID:
		err = pageRefusal(http.StatusBadRequest, "too_long", "条码太长了，无法记录。")
	}
	var resp events.ScanSubmitResponse
	if err == nil {
		err = p.call(r.Context(), events.OpScanSubmit, req, &resp)
	}
	if err != nil {
		p.errorJSON(w, r, events.OpScanSubmit, err)
		return
	}
	pageJSON(w, http.StatusOK, resp)
}

// serveScanQty is POST /api/scans/qty {session, ref, qty}: sets the
// quantity of one of the session's own scans, under the chat's rules (1 to
// 99999, less than 10 minutes old, stocktake open). Setting the same
// quantity again changes nothing more. The answer is
// events.ScanChangeResponse.
func (p *pagesHandler) serveScanQty(w http.ResponseWriter, r *http.Request) {
	var req events.ScanQtyRequest
	if err := decodeScanJSON(w, r, "quantity change", &req); err != nil {
		p.errorJSON(w, r, events.OpScanQty, err)
		return
	}
	p.changeScan(w, r, events.OpScanQty, req.Session, req.Ref, req)
}

// serveScanUndo is POST /api/scans/undo {session, ref}: cancels one of the
// session's own scans under the same rules; the scan is kept, marked
// cancelled, and left out of counts. Undoing it again is refused (409
// not_editable). The answer is events.ScanChangeResponse.
func (p *pagesHandler) serveScanUndo(w http.ResponseWriter, r *http.Request) {
	var req events.ScanUndoRequest
	if err := decodeScanJSON(w, r, "undo", &req); err != nil {
		p.errorJSON(w, r, events.OpScanUndo, err)
		return
	}
	p.changeScan(w, r, events.OpScanUndo, req.Session, req.Ref, req)
}

// changeScan checks session and ref, then asks the workers to run op.
func (p *pagesHandler) changeScan(w http.ResponseWriter, r *http.Request, op, session, ref string, req any) {
	err := checkScanSession(session)
	if err == nil && (ref == "" || len(ref) > pagesMaxScanRef) {
		err = errScanRefMissing
	}
	var resp events.ScanChangeResponse
	if err == nil {
		err = p.call(r.Context(), op, req, &resp)
	}
	if err != nil {
		p.errorJSON(w, r, op, err)
		return
	}
	pageJSON(w, http.StatusOK, resp)
}
