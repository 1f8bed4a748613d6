package admin

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
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

// ScanColumns are the columns of a scans export, in order.
var ScanColumns = []string{"stocktake_id", "employee_no", "openid", "code_type", "code", "location", "qty", "scanned_at", "event_id"}

// SummaryColumns are the columns of a summary export, in order.
var SummaryColumns = []string{"location", "code", "qty"}

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

// exportScans is GET /admin/stocktakes/{id}/scans?format=csv|json&summary=1.
// CSV (the default) has a header row of ScanColumns (SummaryColumns with
// summary); JSON is an array of objects with the same keys. Scans are
// streamed, never held in memory as a whole. A failure after the first byte
// cuts the answer short (and is logged): the client sees a truncated body.
func (s *server) exportScans(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	format := strings.ToLower(q.Get("format"))
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		return errorf(http.StatusBadRequest, "format %q: want csv or json", q.Get("format"))
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

	name := id + "-scans"
	var rows []store.SummaryRow
	if summary {
		name = id + "-summary"
		var err error
		if rows, err = s.cfg.DB.Summary(id); err != nil {
			return err
		}
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.`+format+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)

	bw := bufio.NewWriterSize(w, 32<<10)
	var err error
	switch {
	case summary && format == "csv":
		err = writeSummaryCSV(bw, rows)
	case summary:
		err = writeJSONArray(bw, func(yield func(any) error) error {
			for _, row := range rows {
				if err := yield(row); err != nil {
					return err
				}
			}
			return nil
		})
	case format == "csv":
		err = s.writeScansCSV(bw, id)
	default:
		err = writeJSONArray(bw, func(yield func(any) error) error {
			return s.cfg.DB.EachScan(id, func(sc store.Scan) error { return yield(sc) })
		})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.cfg.Logger.Warn("admin export cut short", "stocktake", id, "err", err)
	}
	return nil
}

func (s *server) writeScansCSV(w io.Writer, id string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ScanColumns); err != nil {
		return err
	}
	rec := make([]string, len(ScanColumns))
	err := s.cfg.DB.EachScan(id, func(sc store.Scan) error {
		rec[0], rec[1], rec[2], rec[3], rec[4] = sc.StocktakeID, sc.EmployeeNo, sc.OpenID, sc.CodeType, sc.Code
		rec[5], rec[6], rec[7], rec[8] = sc.Location, strconv.Itoa(sc.Qty), sc.ScannedAt.UTC().Format(time.RFC3339), sc.EventID
		if err := cw.Write(rec); err != nil {
			return err
		}
		return nil
	})
	cw.Flush()
	if err != nil {
		return err
	}
	return cw.Error()
}

func writeSummaryCSV(w io.Writer, rows []store.SummaryRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(SummaryColumns); err != nil {
		return err
	}
	for _, row := range rows {
		if err := cw.Write([]string{row.Location, row.Code, strconv.Itoa(row.Qty)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSONArray writes the values each yields as one JSON array, one value
// per line.
func writeJSONArray(w io.Writer, each func(yield func(any) error) error) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	first := true
	err := each(func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sep := ",\n"
		if first {
			sep, first = "\n", false
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "]\n"
	if !first {
		end = "\n]\n"
	}
	_, err = io.WriteString(w, end)
	return err
}
