package admin

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"unicode"

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

// varianceFields are the columns of a variance export (SPEC §9), in order.
var varianceFields = []Field[store.VarianceRow]{
	{ExportColumn{"location", TextCell}, func(r store.VarianceRow) any { return r.Location }},
	{ExportColumn{"sku", TextCell}, func(r store.VarianceRow) any { return r.SKU }},
	{ExportColumn{"name", TextCell}, func(r store.VarianceRow) any { return r.Name }},
	{ExportColumn{"expected", NumberCell}, func(r store.VarianceRow) any { return r.Expected }},
	{ExportColumn{"counted", NumberCell}, func(r store.VarianceRow) any { return r.Counted }},
	{ExportColumn{"difference", NumberCell}, func(r store.VarianceRow) any { return r.Difference }},
}

// openStocktake is POST /admin/stocktakes: 201 and the new stocktake. The
// body is JSON (OpenStocktakeRequest: a name and optional location
// prefixes), or a multipart form with the fields name and locations
// (prefixes separated by commas) and, optionally, the book stock as the file
// expected (CSV or XLSX with the columns of ExpectedColumns, ParseExpected).
// 400 for a bad request or a bad book-stock row (naming its line; nothing
// is opened), 409 when the scope overlaps an open stocktake's (naming it).
func (s *server) openStocktake(w http.ResponseWriter, r *http.Request) error {
	req, expected, err := s.readOpenRequest(w, r)
	if err != nil {
		return err
	}
	st, err := s.cfg.DB.OpenStocktakeSpec(store.StocktakeSpec{Name: req.Name, Locations: req.Locations, Expected: expected}, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrConflict):
		open, _ := s.cfg.DB.OpenStocktakesNow()
		for _, cur := range open {
			if store.ScopesOverlap(cur.Locations, req.Locations) {
				return explain(err, "stocktake %s %q is already open: close it first", cur.ID, cur.Name)
			}
		}
		return explain(err, "a stocktake is already open: close it first")
	case errors.Is(err, store.ErrInvalid):
		return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
	case err != nil:
		return err
	}
	s.cfg.Logger.Info("admin opened a stocktake", "stocktake", st.ID, "locations", strings.Join(st.Locations, ","), "expected_rows", st.ExpectedRows)
	writeJSON(w, http.StatusCreated, stocktakeOf(st))
	return nil
}

// readOpenRequest reads POST /admin/stocktakes's body, JSON or multipart.
func (s *server) readOpenRequest(w http.ResponseWriter, r *http.Request) (OpenStocktakeRequest, []store.Expected, error) {
	var req OpenStocktakeRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		if err := dec.Decode(&req); err != nil {
			return req, nil, errorf(http.StatusBadRequest, "body: want JSON {\"name\":\"...\"} or a multipart form: %v", err)
		}
		req.Name = strings.TrimSpace(req.Name)
		if req.Name == "" {
			return req, nil, errorf(http.StatusBadRequest, "name is empty")
		}
		return req, nil, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxImportBytes+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, nil, err
		}
		return req, nil, errorf(http.StatusBadRequest, "body: a multipart form that does not parse: %v", err)
	}
	req.Name = strings.TrimSpace(r.PostFormValue("name"))
	if req.Name == "" {
		return req, nil, errorf(http.StatusBadRequest, "name is empty")
	}
	for _, v := range r.MultipartForm.Value["locations"] {
		req.Locations = append(req.Locations, strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == '，' || unicode.IsSpace(c) })...)
	}
	file, _, err := r.FormFile("expected")
	if errors.Is(err, http.ErrMissingFile) {
		return req, nil, nil
	}
	if err != nil {
		return req, nil, errorf(http.StatusBadRequest, "expected: %v", err)
	}
	defer file.Close()
	var covers func(string) bool
	if len(req.Locations) > 0 {
		covers = store.Stocktake{Locations: req.Locations}.Covers
	}
	expected, err := ParseExpected(file, covers)
	if err != nil {
		return req, nil, err
	}
	return req, expected, nil
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

// exportScans is GET /admin/stocktakes/{id}/scans?format=csv|json|xlsx[&summary=1|&variance=1]:
// the stocktake's scans (the columns of scanFields), with summary the total
// per location and code (summaryFields), with variance the count against the
// book stock per location and sku (varianceFields), written by serveTable.
// Scans are streamed, never held in memory as a whole.
func (s *server) exportScans(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	format, err := ParseFormat(q.Get("format"))
	if err != nil {
		return err
	}
	var summary, variance bool
	for name, dst := range map[string]*bool{"summary": &summary, "variance": &variance} {
		if v := q.Get(name); v != "" {
			b, err := parseBool(v)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s %q: want 1 or 0", name, v)
			}
			*dst = b
		}
	}
	if summary && variance {
		return errorf(http.StatusBadRequest, "summary and variance: ask for one of them")
	}
	if _, err := s.cfg.DB.Stocktake(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return explain(err, "stocktake %s not found", id)
		}
		return err
	}
	if variance {
		rows, err := s.cfg.DB.Variance(id)
		if err != nil {
			return err
		}
		return s.serveTable(w, id+"-variance", format, Columns(varianceFields), func(tw *TableWriter) error {
			buf := make([]any, len(varianceFields))
			for _, row := range rows {
				if err := WriteRecord(tw, varianceFields, row, buf); err != nil {
					return err
				}
			}
			return nil
		})
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
