package admin

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Format is an export's file format.
type Format string

// The export formats.
const (
	FormatCSV  Format = "csv"  // UTF-8 without a byte-order mark, a header row
	FormatJSON Format = "json" // an array of objects keyed by column name
	FormatXLSX Format = "xlsx" // one sheet: a header row, then the rows
)

// ParseFormat reads a format parameter: csv, json or xlsx, any case; empty
// is csv. Anything else is a 400 answer.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatCSV, nil
	case FormatCSV, FormatJSON, FormatXLSX:
		return f, nil
	}
	return "", errorf(http.StatusBadRequest, "format %q: want csv, json or xlsx", s)
}

// ContentType is the media type of a file in f.
func (f Format) ContentType() string {
	switch f {
	case FormatJSON:
		return "application/json; charset=utf-8"
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// CellKind is what an export column holds.
type CellKind int

// The kinds of export columns.
const (
	// TextCell holds a string. In CSV and XLSX one that begins with =, +, -,
	// @, a tab or a carriage return gets a leading ' so that a spreadsheet
	// does not run it as a formula.
	TextCell CellKind = iota
	// NumberCell holds an int, int64 or float64: a plain number in CSV and
	// JSON, a number cell in XLSX.
	NumberCell
	// TimeCell holds a time.Time, shown in the writer's time zone: RFC 3339
	// with the offset in CSV and JSON, a date-time cell in XLSX. The zero
	// time is an empty field (null in JSON).
	TimeCell
)

// ExportColumn is one column of an export.
type ExportColumn struct {
	Name string
	Kind CellKind
}

// Field is an export column and how to get its value from a record of type T.
// A table of Fields is an export's whole layout: adding a column is adding
// one line.
type Field[T any] struct {
	ExportColumn
	Value func(T) any
}

// Columns returns the columns of fields, in order.
func Columns[T any](fields []Field[T]) []ExportColumn {
	cols := make([]ExportColumn, len(fields))
	for i, f := range fields {
		cols[i] = f.ExportColumn
	}
	return cols
}

// WriteRecord writes rec as one row of tw, whose columns are Columns(fields).
// buf, if not nil, is scratch space of len(fields) reused between calls.
func WriteRecord[T any](tw *TableWriter, fields []Field[T], rec T, buf []any) error {
	if len(buf) != len(fields) {
		buf = make([]any, len(fields))
	}
	for i, f := range fields {
		buf[i] = f.Value(rec)
	}
	return tw.Write(buf...)
}

// xlsxTimeFormat is the number format of XLSX time cells.
const xlsxTimeFormat = "yyyy-mm-dd hh:mm:ss"

// TableWriter writes rows of typed columns as CSV, JSON or XLSX. CSV and
// JSON go to the underlying writer as rows are written; XLSX is built in a
// stream (held in temporary files past a few MiB, so memory stays bounded
// however many rows there are) and written out whole by Close. Not safe for
// concurrent use.
type TableWriter struct {
	format Format
	cols   []ExportColumn
	loc    *time.Location
	w      io.Writer

	cw  *csv.Writer // CSV
	rec []string

	keys [][]byte // JSON: the columns' names as JSON strings

	rows int // data rows written

	file      *excelize.File // XLSX
	sw        *excelize.StreamWriter
	timeStyle int
	cells     []any
}

// NewTableWriter returns a writer of a table with the columns cols in
// format to w, with times in loc (nil: UTC). It writes the header row (CSV,
// XLSX) or the array's opening (JSON) at once.
func NewTableWriter(w io.Writer, format Format, cols []ExportColumn, loc *time.Location) (*TableWriter, error) {
	if loc == nil {
		loc = time.UTC
	}
	tw := &TableWriter{format: format, cols: cols, loc: loc, w: w}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	switch format {
	case FormatCSV:
		tw.cw = csv.NewWriter(w)
		tw.rec = make([]string, len(cols))
		if err := tw.cw.Write(names); err != nil {
			return nil, fmt.Errorf("admin: export: %w", err)
		}
	case FormatJSON:
		tw.keys = make([][]byte, len(cols))
		for i, name := range names {
			tw.keys[i], _ = json.Marshal(name)
		}
		if _, err := io.WriteString(w, "["); err != nil {
			return nil, fmt.Errorf("admin: export: %w", err)
		}
	case FormatXLSX:
		if err := tw.startXLSX(names); err != nil {
			tw.Abort()
			return nil, fmt.Errorf("admin: export: %w", err)
		}
	default:
		return nil, fmt.Errorf("admin: export: unknown format %q", format)
	}
	return tw, nil
}

func (tw *TableWriter) startXLSX(names []string) error {
	tw.file = excelize.NewFile()
	sheet := tw.file.GetSheetName(0)
	var err error
	if tw.sw, err = tw.file.NewStreamWriter(sheet); err != nil {
		return err
	}
	timeFormat := xlsxTimeFormat
	if tw.timeStyle, err = tw.file.NewStyle(&excelize.Style{CustomNumFmt: &timeFormat}); err != nil {
		return err
	}
	headerStyle, err := tw.file.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	for i, c := range tw.cols {
		if c.Kind == TimeCell {
			if err := tw.sw.SetColWidth(i+1, i+1, 20); err != nil {
				return err
			}
		}
	}
	tw.cells = make([]any, len(tw.cols))
	for i, name := range names {
		tw.cells[i] = excelize.Cell{StyleID: headerStyle, Value: name}
	}
	return tw.sw.SetRow("A1", tw.cells)
}

// Write writes one row: values[i] is the value of the i-th column, of the
// Go type its CellKind names. A value of another type is an error.
func (tw *TableWriter) Write(values ...any) error {
	if len(values) != len(tw.cols) {
		return fmt.Errorf("admin: export: %d values for %d columns", len(values), len(tw.cols))
	}
	var err error
	switch tw.format {
	case FormatCSV:
		err = tw.writeCSV(values)
	case FormatJSON:
		err = tw.writeJSON(values)
	default:
		err = tw.writeXLSX(values)
	}
	if err != nil {
		return fmt.Errorf("admin: export: %w", err)
	}
	tw.rows++
	return nil
}

func (tw *TableWriter) writeCSV(values []any) error {
	for i, c := range tw.cols {
		switch c.Kind {
		case TextCell:
			s, err := text(c, values[i])
			if err != nil {
				return err
			}
			tw.rec[i] = GuardFormula(s)
		case NumberCell:
			s, err := number(c, values[i])
			if err != nil {
				return err
			}
			tw.rec[i] = s
		case TimeCell:
			t, err := timeOf(c, values[i])
			if err != nil {
				return err
			}
			tw.rec[i] = ""
			if !t.IsZero() {
				tw.rec[i] = t.In(tw.loc).Format(time.RFC3339)
			}
		}
	}
	return tw.cw.Write(tw.rec)
}

func (tw *TableWriter) writeJSON(values []any) error {
	b := make([]byte, 0, 256)
	if tw.rows == 0 {
		b = append(b, '\n')
	} else {
		b = append(b, ",\n"...)
	}
	b = append(b, '{')
	for i, c := range tw.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, tw.keys[i]...)
		b = append(b, ':')
		switch c.Kind {
		case TextCell:
			s, err := text(c, values[i])
			if err != nil {
				return err
			}
			v, _ := json.Marshal(s)
			b = append(b, v...)
		case NumberCell:
			s, err := number(c, values[i])
			if err != nil {
				return err
			}
			b = append(b, s...)
		case TimeCell:
			t, err := timeOf(c, values[i])
			if err != nil {
				return err
			}
			if t.IsZero() {
				b = append(b, "null"...)
			} else {
				b = append(b, '"')
				b = t.In(tw.loc).AppendFormat(b, time.RFC3339)
				b = append(b, '"')
			}
		}
	}
	b = append(b, '}')
	_, err := tw.w.Write(b)
	return err
}

func (tw *TableWriter) writeXLSX(values []any) error {
	for i, c := range tw.cols {
		switch c.Kind {
		case TextCell:
			s, err := text(c, values[i])
			if err != nil {
				return err
			}
			tw.cells[i] = GuardFormula(s)
		case NumberCell:
			if _, err := number(c, values[i]); err != nil {
				return err
			}
			tw.cells[i] = values[i]
		case TimeCell:
			t, err := timeOf(c, values[i])
			if err != nil {
				return err
			}
			tw.cells[i] = nil
			if !t.IsZero() {
				tw.cells[i] = excelize.Cell{StyleID: tw.timeStyle, Value: t.In(tw.loc)}
			}
		}
	}
	cell, err := excelize.CoordinatesToCellName(1, tw.rows+2)
	if err != nil {
		return err
	}
	return tw.sw.SetRow(cell, tw.cells)
}

// Close finishes the table: it flushes CSV, closes the JSON array, and
// writes the whole XLSX file to the underlying writer; then it releases the
// XLSX's temporary files. Call Close once, or Abort instead.
func (tw *TableWriter) Close() error {
	var err error
	switch tw.format {
	case FormatCSV:
		tw.cw.Flush()
		err = tw.cw.Error()
	case FormatJSON:
		end := "]\n"
		if tw.rows > 0 {
			end = "\n]\n"
		}
		_, err = io.WriteString(tw.w, end)
	case FormatXLSX:
		if err = tw.sw.Flush(); err == nil {
			_, err = tw.file.WriteTo(tw.w)
		}
		tw.Abort()
	}
	if err != nil {
		return fmt.Errorf("admin: export: %w", err)
	}
	return nil
}

// Abort releases the XLSX's temporary files without writing it. It does
// nothing for CSV and JSON (what was written stays written).
func (tw *TableWriter) Abort() {
	if tw.file != nil {
		_ = tw.file.Close()
		tw.file = nil
	}
}

// GuardFormula returns s with a leading ' when it begins with =, +, -, @, a
// tab or a carriage return, so that a spreadsheet shows it as text instead
// of running it as a formula (SPEC §7).
func GuardFormula(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

func text(c ExportColumn, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("column %s: %T is not a string", c.Name, v)
	}
	return s, nil
}

func number(c ExportColumn, v any) (string, error) {
	switch n := v.(type) {
	case int:
		return strconv.Itoa(n), nil
	case int64:
		return strconv.FormatInt(n, 10), nil
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("column %s: %T is not a number", c.Name, v)
}

func timeOf(c ExportColumn, v any) (time.Time, error) {
	t, ok := v.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("column %s: %T is not a time", c.Name, v)
	}
	return t, nil
}

// serveTable answers GET of an export named name (the download's file name
// without its extension) in format, with the columns cols; rows writes the
// rows to tw (tw.Write or WriteRecord), in order, and must not Close it. An error before the first byte of the answer
// (XLSX is sent only once complete) is returned for writeError; after it,
// the answer is cut short and the error logged.
func (s *server) serveTable(w http.ResponseWriter, name string, format Format, cols []ExportColumn,
	rows func(tw *TableWriter) error) error {
	aw := &lazyAnswer{w: w, header: func(h http.Header) {
		h.Set("Content-Type", format.ContentType())
		h.Set("Content-Disposition", `attachment; filename="`+name+`.`+string(format)+`"`)
		h.Set("Cache-Control", "no-store")
	}}
	bw := bufio.NewWriterSize(aw, 32<<10)
	tw, err := NewTableWriter(bw, format, cols, s.cfg.Location)
	if err != nil {
		return err
	}
	if err = rows(tw); err != nil {
		tw.Abort()
	} else if err = tw.Close(); err == nil {
		err = bw.Flush()
	}
	if err != nil && !aw.started {
		return err
	}
	if err != nil {
		s.cfg.Logger.Warn("admin export cut short", "export", name, "err", err)
	}
	if !aw.started { // an empty answer still gets its headers
		aw.start()
	}
	return nil
}

// lazyAnswer writes an answer's headers and status 200 just before its
// first byte, so that an error found earlier can still be answered instead.
type lazyAnswer struct {
	w       http.ResponseWriter
	header  func(http.Header)
	started bool
}

func (a *lazyAnswer) start() {
	a.started = true
	a.header(a.w.Header())
	a.w.WriteHeader(http.StatusOK)
}

func (a *lazyAnswer) Write(p []byte) (int, error) {
	if !a.started {
		a.start()
	}
	return a.w.Write(p)
}
