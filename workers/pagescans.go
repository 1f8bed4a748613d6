package workers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
)

// pageScan is how the /scan page shows s at now. ScannedAt is in the
// account's time zone (Config.Location): the page shows the wall clock of
// its RFC 3339 text, so that it agrees with the chat replies whatever zone
// the phone is set to.
func (s *Service) pageScan(sc store.Scan, unknown bool, now time.Time) events.PageScan {
	return events.PageScan{
		Ref: sc.Ref(), Code: sc.Code, Name: sc.Name, Label: itemLabel(sc.Name, sc.Code), Unknown: unknown,
		Location: sc.Location, Qty: sc.Qty, Cancelled: sc.Cancelled, ScannedAt: sc.ScannedAt.In(s.cfg.Location),
		Editable: !sc.Cancelled && now.Sub(sc.ScannedAt) < store.EditWindow,
	}
}

// checkBound returns the refusal to show unless openid is bound and active.
func (s *Service) checkBound(tx *store.Tx, openid string) error {
	b, err := tx.BindingByOpenID(openid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && b.State != store.StateActive) {
		return rpcErr(http.StatusForbidden, string(refusedNotBound), msgNotBound(s.cfg.PublicURL))
	}
	return err
}

// scanRecent lists a bound session's latest scans in the open stocktakes,
// whichever way they were made.
func (s *Service) scanRecent(_ context.Context, req events.ScanRecentRequest) (events.ScanRecentResponse, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	sess, err := s.session(req.Session) // its own transaction: never inside another
	if err != nil {
		return events.ScanRecentResponse{}, err
	}
	openid, now := sess.OpenID, s.now()
	var resp events.ScanRecentResponse
	err = s.db.View(func(tx *store.Tx) error {
		if err := s.checkBound(tx, openid); err != nil {
			return err
		}
		scans, err := tx.RecentScans(openid, limit)
		if err != nil {
			return err
		}
		hasItems := tx.HasItems()
		resp.Scans = make([]events.PageScan, 0, len(scans))
		for _, sc := range scans {
			resp.Scans = append(resp.Scans, s.pageScan(sc, hasItems && sc.Name == "" && sc.SKU == sc.Code, now))
		}
		resp.Location, _ = tx.Location(openid)
		if st, err := tx.StocktakeFor(resp.Location); err == nil {
			resp.Count = tx.ScanCount(st.ID, openid)
		}
		return nil
	})
	if err != nil {
		return events.ScanRecentResponse{}, wrapPage("recent scans", err)
	}
	return resp, nil
}

// scanQty sets the quantity of one of a bound session's own scans, under
// the chat's rules.
func (s *Service) scanQty(_ context.Context, req events.ScanQtyRequest) (events.ScanChangeResponse, error) {
	if req.Qty < store.MinQty || req.Qty > store.MaxQty {
		return events.ScanChangeResponse{}, rpcErr(http.StatusBadRequest, "bad_qty", fmt.Sprintf("数量要在 %d 到 %d 之间。", store.MinQty, store.MaxQty))
	}
	return s.changeScan(req.Session, req.Ref, func(tx *store.Tx, openid string, now time.Time) (store.Recorded, string, error) {
		r, err := tx.SetScanQty(openid, req.Ref, req.Qty, now)
		if err != nil {
			return r, "", err
		}
		return r, msgQtySet(itemLabel(r.Scan.Name, r.Scan.Code), r.Scan.ScannedAt.In(s.cfg.Location), r.Scan.Qty, r.Count), nil
	})
}

// scanUndo cancels one of a bound session's own scans, under the chat's
// rules.
func (s *Service) scanUndo(_ context.Context, req events.ScanUndoRequest) (events.ScanChangeResponse, error) {
	return s.changeScan(req.Session, req.Ref, func(tx *store.Tx, openid string, now time.Time) (store.Recorded, string, error) {
		r, err := tx.CancelScan(openid, req.Ref, now)
		if err != nil {
			return r, "", err
		}
		return r, msgUndone(itemLabel(r.Scan.Name, r.Scan.Code), r.Scan.ScannedAt.In(s.cfg.Location), r.Count), nil
	})
}

func (s *Service) changeScan(token, ref string, change func(*store.Tx, string, time.Time) (store.Recorded, string, error)) (events.ScanChangeResponse, error) {
	if ref == "" || len(ref) > 64 {
		return events.ScanChangeResponse{}, rpcErr(http.StatusBadRequest, "bad_request", "没有指明要改哪一次扫码，请刷新页面。")
	}
	sess, err := s.session(token) // its own transaction: never inside another
	if err != nil {
		return events.ScanChangeResponse{}, err
	}
	openid, now := sess.OpenID, s.now()
	var (
		resp    events.ScanChangeResponse
		changed string // the stocktake of the changed scan
	)
	err = s.db.Update(func(tx *store.Tx) error {
		if err := s.checkBound(tx, openid); err != nil {
			return err
		}
		r, msg, err := change(tx, openid, now)
		if err != nil {
			return err
		}
		resp = events.ScanChangeResponse{Message: msg, Scan: s.pageScan(r.Scan, false, now), Count: r.Count}
		changed = r.Scan.StocktakeID
		return nil
	})
	if err != nil {
		return events.ScanChangeResponse{}, wrapPage("change scan", err)
	}
	s.notifyScans(changed)
	return resp, nil
}

// wrapPage turns the store's refusals of a page change into what the page
// shows; other errors stay internal.
func wrapPage(action string, err error) error {
	var rerr *events.RPCError
	switch {
	case errors.As(err, &rerr):
		return rerr
	case errors.Is(err, store.ErrNotFound):
		return rpcErr(http.StatusNotFound, "not_found", "找不到这次扫码，请刷新页面。")
	case errors.Is(err, store.ErrExpired):
		return rpcErr(http.StatusConflict, "too_old", "只能修改 10 分钟内的扫码。")
	case errors.Is(err, store.ErrConflict):
		return rpcErr(http.StatusConflict, "not_editable", "这次扫码已撤销或盘点已结束，不能再改。")
	case errors.Is(err, store.ErrInvalid):
		return rpcErr(http.StatusBadRequest, "bad_qty", "数量要在 1 到 99999 之间。")
	}
	return fmt.Errorf("workers: page %s: %w", action, err)
}
