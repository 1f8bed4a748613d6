package admin

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/wxscan/wxscan/store"
)

// Field length limits of SPEC §11, in bytes of UTF-8.
const (
	// MaxKeyBytes bounds the short key-like fields that have no limit of
	// their own in the store (can_scan, qty); the others use the store's.
	MaxKeyBytes = 64
	// MaxNameBytes bounds names (of people and items).
	MaxNameBytes = store.MaxNameLen
)

// maxUnzippedBytes bounds what an XLSX upload may unpack to, so that a small
// zip bomb cannot fill the memory or the disk.
const maxUnzippedBytes = 256 << 20

// xlsxMagic starts every XLSX file (a zip archive).
var xlsxMagic = []byte("PK\x03\x04")

// oleMagic starts an old XLS file and a password-protected XLSX (both OLE
// compound files).
var oleMagic = []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")

// ImportColumn is one column an import takes.
type ImportColumn struct {
	// Name is the header's name for it, lower case.
	Name string
	// Optional columns may be left out of the header; a left-out column
	// reads as "".
	Optional bool
	// MaxBytes bounds its trimmed value; 0: no bound.
	MaxBytes int
}

// Row is one data row of an imported table.
type Row struct {
	// Line is the row's line in a CSV file (counting from 1, blank lines
	// included) or its row number on the XLSX sheet.
	Line int
	// Fields maps each column of the header to its trimmed value.
	Fields map[string]string
}

// Get returns the trimmed value of the named column, "" when the header left
// an optional column out.
func (r Row) Get(name string) string { return r.Fields[name] }

// LineError is a bad row or header of an import: Line is its line in the
// file (its row number on an XLSX sheet), 0 for the file as a whole.
// The parsers return it wrapped in an answer with status 400; find it with
// errors.As.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// lineErrorf returns a 400 answer wrapping a *LineError.
func lineErrorf(line int, format string, args ...any) error {
	le := &LineError{Line: line, Msg: fmt.Sprintf(format, args...)}
	return &apiError{code: http.StatusBadRequest, msg: le.Error(), err: le}
}

// ReadTable reads an uploaded table and calls fn for each data row, in order,
// stopping at the first error (its own or fn's), which it returns.
//
// The file is XLSX when it starts with the zip signature PK\x03\x04 (its first
// sheet is read; a row's line is its row number on the sheet), CSV otherwise;
// an old XLS or a password-protected file is refused as such.
// A CSV file is UTF-8 (a byte-order mark is skipped) when it is valid UTF-8,
// else GB18030 (which covers GBK and GB2312) when it decodes as that without
// a bad byte; else it is refused naming the line where the longer-lasting of
// the two readings broke ("line 3: not UTF-8 or GB18030 text").
//
// The first non-blank row is the header: it names the columns in any order,
// case and surrounding spaces ignored. A column not in cols, a column named
// twice or a required column missing refuses the file. Values are trimmed;
// a row whose values are all empty is skipped as blank. A CSV row with a
// different number of fields than the header, an XLSX row with a value
// beyond the header's columns, and a value over its column's MaxBytes are
// refused naming the line. Errors for the file's content are 400 answers
// wrapping a *LineError; a body over MaxImportBytes is a *http.MaxBytesError
// (413); other read errors pass through. ReadTable reads the whole body
// (at most MaxImportBytes) before the first call to fn.
func ReadTable(body io.Reader, cols []ImportColumn, fn func(Row) error) error {
	data, err := io.ReadAll(io.LimitReader(body, MaxImportBytes+1))
	if err != nil {
		return err
	}
	if len(data) > MaxImportBytes {
		return &http.MaxBytesError{Limit: MaxImportBytes}
	}
	if bytes.HasPrefix(data, oleMagic) {
		return lineErrorf(0, "an XLS (Excel 97-2003) or password-protected file: save it as XLSX or CSV without a password")
	}
	var next func() (line int, rec []string, err error)
	isXLSX := bytes.HasPrefix(data, xlsxMagic)
	if isXLSX {
		f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: maxUnzippedBytes})
		if err != nil {
			return lineErrorf(0, "not a readable XLSX file: %v", err)
		}
		defer f.Close()
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			return lineErrorf(0, "the XLSX file has no sheet")
		}
		rows, err := f.Rows(sheets[0])
		if err != nil {
			return lineErrorf(0, "not a readable XLSX file: %v", err)
		}
		defer rows.Close()
		line := 0
		next = func() (int, []string, error) {
			if !rows.Next() {
				if err := rows.Error(); err != nil {
					return line + 1, nil, lineErrorf(line+1, "XLSX sheet: %v", err)
				}
				return 0, nil, io.EOF
			}
			line++
			// Raw values: a barcode typed as a number stays all its digits.
			rec, err := rows.Columns(excelize.Options{RawCellValue: true})
			if err != nil {
				return line, nil, lineErrorf(line, "XLSX sheet: %v", err)
			}
			return line, rec, nil
		}
	} else {
		text, err := decodeText(data)
		if err != nil {
			return err
		}
		cr := csv.NewReader(strings.NewReader(text))
		cr.FieldsPerRecord = -1
		next = func() (int, []string, error) {
			rec, err := cr.Read()
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return pe.Line, nil, &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("line %d: %v", pe.Line, pe.Err),
						err: &LineError{Line: pe.Line, Msg: pe.Err.Error()}}
				}
				return 0, nil, err
			}
			line, _ := cr.FieldPos(0)
			return line, rec, nil
		}
	}
	return readRows(next, isXLSX, cols, fn)
}

// readRows does ReadTable's work on the records next yields.
func readRows(next func() (int, []string, error), sheet bool, cols []ImportColumn, fn func(Row) error) error {
	want := make([]string, 0, len(cols))
	for _, c := range cols {
		if c.Optional {
			want = append(want, "["+c.Name+"]")
		} else {
			want = append(want, c.Name)
		}
	}
	wantHeader := strings.Join(want, ",")

	var (
		line   int
		header []string
		err    error
	)
	for {
		line, header, err = next()
		if errors.Is(err, io.EOF) {
			return lineErrorf(0, "empty file: want a header row %s", wantHeader)
		}
		if err != nil {
			return err
		}
		if !blank(header) {
			break
		}
	}
	byIndex := make([]*ImportColumn, len(header))
	seen := map[string]bool{}
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		for j := range cols {
			if cols[j].Name == name {
				byIndex[i] = &cols[j]
			}
		}
		if byIndex[i] == nil {
			return lineErrorf(line, "unknown column %q: want the header %s", name, wantHeader)
		}
		if seen[name] {
			return lineErrorf(line, "column %s appears twice", name)
		}
		seen[name] = true
	}
	for _, c := range cols {
		if !c.Optional && !seen[c.Name] {
			return lineErrorf(line, "column %s is missing: want the header %s", c.Name, wantHeader)
		}
	}

	for {
		line, rec, err := next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if blank(rec) {
			continue
		}
		if sheet {
			for i := len(header); i < len(rec); i++ {
				if strings.TrimSpace(rec[i]) != "" {
					return lineErrorf(line, "a value in column %d, beyond the header's %d columns", i+1, len(header))
				}
			}
		} else if len(rec) != len(header) {
			return lineErrorf(line, "%d fields, want %d", len(rec), len(header))
		}
		row := Row{Line: line, Fields: make(map[string]string, len(header))}
		for i, c := range byIndex {
			v := ""
			if i < len(rec) {
				v = strings.TrimSpace(rec[i])
			}
			if c.MaxBytes > 0 && len(v) > c.MaxBytes {
				return lineErrorf(line, "%s is longer than %d bytes", c.Name, c.MaxBytes)
			}
			row.Fields[c.Name] = v
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// blank reports whether every value of rec is empty or spaces.
func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// decodeText returns a CSV file's text: UTF-8 if it is valid UTF-8 (without
// its byte-order mark), else GB18030 decoded to UTF-8. A file that is
// neither, or that holds a NUL byte (UTF-16, a binary file), is refused
// naming the line where the longer-lasting of the two readings broke.
func decodeText(data []byte) (string, error) {
	utf8Line := badUTF8Line(data)
	if utf8Line == 0 {
		return string(bytes.TrimPrefix(data, []byte("\ufeff"))), nil
	}
	var out strings.Builder
	out.Grow(len(data) * 3 / 2)
	dec := simplifiedchinese.GB18030.NewDecoder()
	line := 0
	for rest := data; len(rest) > 0; {
		line++
		raw, after, found := bytes.Cut(rest, []byte("\n"))
		rest = after
		text, err := dec.Bytes(raw)
		if err != nil || bytes.IndexByte(raw, 0) >= 0 ||
			strings.Count(string(text), "\ufffd") != bytes.Count(raw, gb18030Replacement) {
			return "", lineErrorf(max(line, utf8Line), "not UTF-8 or GB18030 text")
		}
		out.Write(text)
		if found {
			out.WriteByte('\n')
		}
	}
	return strings.TrimPrefix(out.String(), "\ufeff"), nil
}

// gb18030Replacement is U+FFFD in GB18030: the decoder writes U+FFFD for a
// bad byte too, so only as many as the file spells out are good.
var gb18030Replacement = []byte{0x84, 0x31, 0xA4, 0x37}

// badUTF8Line is the line (from 1) of data's first byte that is not UTF-8
// text (invalid UTF-8 or NUL), 0 if there is none.
func badUTF8Line(data []byte) int {
	if utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 {
		return 0
	}
	for line, rest := 1, data; ; line++ {
		raw, after, _ := bytes.Cut(rest, []byte("\n"))
		if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
			return line
		}
		rest = after
	}
}
