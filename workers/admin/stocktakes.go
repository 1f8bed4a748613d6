package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wxscan/wxscan/store"
)

func stocktakeOf(st store.Stocktake) Stocktake {
	state := "closed"
	if st.Open() {
		state = "open"
	}
	return Stocktake{Stocktake: st, State: state}
}

// scanFields are the columns of a scans export, in order.
var scanFields = []Field[store.Scan]{
	{ExportColumn{"stocktake_id", TextCell}, func(s store.Scan) any { return s.StocktakeID }},
	{ExportColumn{"employee_no", TextCell}, func(s store.Scan) any { return s.EmployeeNo }},
	{ExportColumn{"openid", TextCell}, func(s store.Scan) any { return s.OpenID }},
	{ExportColumn{"code_type", TextCell}, func(s store.Scan) any { return s.CodeType }},
	{ExportColumn{"code", TextCell}, func(s store.Scan) any { return s.Code }},
	{ExportColumn{"location", TextCell}, func(s store.Scan) any { return s.Location }},
	{ExportColumn{"qty", NumberCell}, func(s store.Scan) any { return s.Qty }},
	{ExportColumn{"scanned_at", TimeCell}, func(s store.Scan) any { return s.ScannedAt }},
	{ExportColumn{"event_id", TextCell}, func(s store.Scan) any { return s.EventID }},
	{ExportColumn{"sku", TextCell}, func(s store.Scan) any { return s.SKU }},
	{ExportColumn{"name", TextCell}, func(s store.Scan) any { return s.Name }},
}

// summaryFields are the columns of a summary export, in order.
var summaryFields = []Field[store.SummaryRow]{
	{ExportColumn{"location", TextCell}, func(r store.SummaryRow) any { return r.Location }},
	{ExportColumn{"code", TextCell}, func(r store.SummaryRow) any { return r.Code }},
	{ExportColumn{"qty", NumberCell}, func(r store.SummaryRow) any { return r.Qty }},
}

// openStocktake is POST /admin/stocktakes {"name":"..."}: 201 and the new
// stocktake, 409 while another is open.
func (s *server) openStocktake(w http.ResponseWriter, r *http.Request) error {
	var req OpenStocktakeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "body: want JSON {\"name\":\"...\"}: %v", err)
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return errorf(http.StatusBadRequest, "name is empty")
	}
	st, err := s.cfg.DB.OpenStocktake(req.Name, s.cfg.Now())
	if errors.Is(err, store.ErrConflict) {
		if cur, cerr := s.cfg.DB.OpenStocktakeNow(); cerr == nil {
			return explain(err, "stocktake %s %q is already open: close it first", cur.ID, cur.Name)
		}
		return explain(err, "a stocktake is already open: close it first")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, stocktakeOf(st))
	return nil
}

// listStocktakes is GET /admin/stocktakes: every stocktake, oldest first.
func (s *server) listStocktakes(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.DB.Stocktakes()
	if err != nil {
		return err
	}
	out := make([]Stocktake, 0, len(list))
	for _, st := range list {
		out = append(out, stocktakeOf(st))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// closeStocktake is POST /admin/stocktakes/{id}/close: the closed stocktake;
// 404 unknown, 409 already closed.
func (s *server) closeStocktake(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	st, err := s.cfg.DB.CloseStocktake(id, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return explain(err, "stocktake %s not found", id)
	case errors.Is(err, store.ErrConflict):
		return explain(err, "stocktake %s is already closed", id)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, stocktakeOf(st))
	return nil
}

// exportScans is GET /admin/stocktakes/{id}/scans?format=csv|json|xlsx&summary=1:
// the stocktake's scans (the columns of scanFields), or with summary the
// total per location and code (summaryFields), written by serveTable.
// Scans are streamed, never held in memory as a whole.
func (s *server) exportScans(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	format, err := ParseFormat(q.Get("format"))
	if err != nil {
		return err
	}
	summary := false
	if v := q.Get("summary"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "summary %q: want 1 or 0", v)
		}
		summary = b
	}
	if _, err := s.cfg.DB.Stocktake(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return explain(err, "stocktake %s not found", id)
		}
		return err
	}
	if summary {
		rows, err := s.cfg.DB.Summary(id)
		if err != nil {
			return err
		}
		return s.serveTable(w, id+"-summary", format, Columns(summaryFields), func(tw *TableWriter) error {
			buf := make([]any, len(summaryFields))
			for _, row := range rows {
				if err := WriteRecord(tw, summaryFields, row, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return s.serveTable(w, id+"-scans", format, Columns(scanFields), func(tw *TableWriter) error {
		buf := make([]any, len(scanFields))
		return s.cfg.DB.EachScan(id, func(sc store.Scan) error {
			return WriteRecord(tw, scanFields, sc, buf)
		})
	})
}
