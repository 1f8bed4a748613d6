package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

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

// MaxStocktakeFormBytes bounds the body of POST /admin/stocktakes: a book
// stock file of MaxImportBytes and the form's other fields.
const MaxStocktakeFormBytes = MaxImportBytes + 64<<10

// openStocktake is POST /admin/stocktakes: 201 and the new stocktake. The
// body is JSON {"name":"...","locations":["A-",...]} (OpenStocktakeRequest
// without a book stock; other fields are refused), or multipart/form-data, as the console's form
// posts it, with the fields name and locations (prefixes separated by
// commas, or the field repeated) and the optional file part expected, the
// book stock (see ParseExpected). 400 for a bad name, prefix or book-stock
// row (naming its line; nothing is opened), 409 when the scope overlaps an
// open stocktake's (the message names that one).
func (s *server) openStocktake(w http.ResponseWriter, r *http.Request) error {
	var req OpenStocktakeRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, MaxStocktakeFormBytes)
		mr, err := r.MultipartReader()
		if err != nil {
			return errorf(http.StatusBadRequest, "body: %v", err)
		}
		if req, err = readStocktakeForm(mr); err != nil {
			return err
		}
	} else if err := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, "body: want JSON {\"name\":\"...\",\"locations\":[...]} or a multipart form: %v", err)
	}
	st, err := OpenStocktakeFrom(s.cfg.DB, req, s.cfg.Now())
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("admin opened stocktake", "id", st.ID, "locations", strings.Join(st.Locations, ","), "expected_rows", st.ExpectedRows)
	writeJSON(w, http.StatusCreated, st)
	return nil
}

// decodeStrict decodes JSON into v, refusing fields v does not have (a
// book stock sent as JSON would otherwise be dropped without a word).
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// readStocktakeForm reads the multipart form of POST /admin/stocktakes.
func readStocktakeForm(mr *multipart.Reader) (OpenStocktakeRequest, error) {
	var req OpenStocktakeRequest
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return req, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return req, err
			}
			return req, errorf(http.StatusBadRequest, "body: bad multipart form: %v", err)
		}
		limit := int64(64 << 10)
		if part.FormName() == "expected" {
			limit = MaxImportBytes
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		part.Close()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return req, err
			}
			return req, errorf(http.StatusBadRequest, "body: bad multipart form: %v", err)
		}
		if int64(len(data)) > limit {
			return req, &http.MaxBytesError{Limit: limit}
		}
		switch part.FormName() {
		case "name":
			req.Name = string(data)
		case "locations":
			req.Locations = append(req.Locations, SplitLocations(string(data))...)
		case "expected":
			// A form whose file input was left empty posts an empty part:
			// no book stock.
			if len(data) > 0 {
				req.Expected = bytes.NewReader(data)
			}
		}
	}
}

// SplitLocations reads a scope written as prefixes separated by commas
// ("A-, B-"): the trimmed prefixes, empty ones left out.
func SplitLocations(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// OpenStocktakeFrom opens the stocktake req describes, all or nothing: its
// name, its scope (req.Locations) and, when req.Expected is set, its book
// stock, read with ParseExpected against that scope. It is what POST
// /admin/stocktakes does and what the console's form calls. Its errors are
// the API's answers: 400 for an empty name, a bad prefix or a bad book-stock
// row ("book stock: line 3: ..."), 409 naming the open stocktake whose scope
// overlaps, 413 for a book stock over MaxImportBytes.
func OpenStocktakeFrom(db *store.DB, req OpenStocktakeRequest, now time.Time) (Stocktake, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return Stocktake{}, errorf(http.StatusBadRequest, "name is empty")
	}
	var locs []string
	for _, p := range req.Locations {
		p = strings.TrimSpace(p)
		if p == "" {
			return Stocktake{}, errorf(http.StatusBadRequest, "locations: an empty prefix")
		}
		if len(p) > store.MaxLocationLen {
			return Stocktake{}, errorf(http.StatusBadRequest, "locations: prefix %q is longer than %d bytes", p, store.MaxLocationLen)
		}
		locs = append(locs, p)
	}
	spec := store.StocktakeSpec{Name: name, Locations: locs}
	if req.Expected != nil {
		rows, err := ParseExpected(req.Expected, store.Stocktake{Locations: locs}.Covers)
		if err != nil {
			return Stocktake{}, prefixed(err, "book stock: ")
		}
		spec.Expected = rows
	}
	st, err := db.OpenStocktakeSpec(spec, now)
	switch {
	case errors.Is(err, store.ErrConflict):
		return Stocktake{}, explain(err, "%s: close it first or choose other locations", storeMessage(err, store.ErrConflict))
	case errors.Is(err, store.ErrInvalid):
		return Stocktake{}, explain(err, "%s", storeMessage(err, store.ErrInvalid))
	case err != nil:
		return Stocktake{}, err
	}
	return stocktakeOf(st), nil
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

// varianceFields are the columns of a variance export (SPEC §9), in order.
var varianceFields = []Field[store.VarianceRow]{
	{ExportColumn{"location", TextCell}, func(r store.VarianceRow) any { return r.Location }},
	{ExportColumn{"sku", TextCell}, func(r store.VarianceRow) any { return r.SKU }},
	{ExportColumn{"name", TextCell}, func(r store.VarianceRow) any { return r.Name }},
	{ExportColumn{"expected", NumberCell}, func(r store.VarianceRow) any { return r.Expected }},
	{ExportColumn{"counted", NumberCell}, func(r store.VarianceRow) any { return r.Counted }},
	{ExportColumn{"difference", NumberCell}, func(r store.VarianceRow) any { return r.Difference }},
}

// ExportKind is which table of a stocktake an export holds.
type ExportKind string

// The export kinds.
const (
	ExportScans    ExportKind = "scans"    // one row per scan (scanFields)
	ExportSummary  ExportKind = "summary"  // the total per location and code
	ExportVariance ExportKind = "variance" // the count against the book stock
)

// exportScans is GET /admin/stocktakes/{id}/scans?format=csv|json|xlsx
// with summary=1 or variance=1 (not both: 400): the stocktake's scans (the
// columns of scanFields), the total per location and code
// (summaryFields), or the variance against the book stock
// (varianceFields), written by serveTable. Cancelled scans are left out.
func (s *server) exportScans(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	format, err := ParseFormat(q.Get("format"))
	if err != nil {
		return err
	}
	kind := ExportScans
	for _, k := range []ExportKind{ExportSummary, ExportVariance} {
		v := q.Get(string(k))
		if v == "" {
			continue
		}
		on, err := parseBool(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "%s %q: want 1 or 0", k, v)
		}
		if on && kind != ExportScans {
			return errorf(http.StatusBadRequest, "summary and variance: choose one")
		}
		if on {
			kind = k
		}
	}
	if _, err := s.cfg.DB.Stocktake(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return explain(err, "stocktake %s not found", id)
		}
		return err
	}
	cols, rows, err := ExportTable(s.cfg.DB, id, kind)
	if err != nil {
		return err
	}
	return s.serveTable(w, id+"-"+string(kind), format, cols, rows)
}

// ExportTable returns the columns and the row writer of stocktake id's
// export of kind, for serveTable (the API) or a TableWriter of the
// console's own. Scans are streamed from the store, never held in memory as
// a whole; the summary and the variance are read when called. An unknown
// stocktake is an error wrapping store.ErrNotFound.
func ExportTable(db *store.DB, id string, kind ExportKind) ([]ExportColumn, func(tw *TableWriter) error, error) {
	switch kind {
	case ExportSummary:
		rows, err := db.Summary(id)
		if err != nil {
			return nil, nil, err
		}
		return Columns(summaryFields), writeAll(summaryFields, rows), nil
	case ExportVariance:
		rows, err := db.Variance(id)
		if err != nil {
			return nil, nil, err
		}
		return Columns(varianceFields), writeAll(varianceFields, rows), nil
	}
	return Columns(scanFields), func(tw *TableWriter) error {
		buf := make([]any, len(scanFields))
		return db.EachScan(id, func(sc store.Scan) error {
			return WriteRecord(tw, scanFields, sc, buf)
		})
	}, nil
}

// writeAll writes rows with fields.
func writeAll[T any](fields []Field[T], rows []T) func(tw *TableWriter) error {
	return func(tw *TableWriter) error {
		buf := make([]any, len(fields))
		for _, row := range rows {
			if err := WriteRecord(tw, fields, row, buf); err != nil {
				return err
			}
		}
		return nil
	}
}
