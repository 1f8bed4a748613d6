package admin

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wxscan/wxscan/store"
)

// staffColumns are the columns of a staff directory CSV, in any order.
var staffColumns = []string{"employee_no", "name", "bind_code", "can_scan"}

// importUsers is POST /admin/users/import: the body is a staff directory CSV,
// imported all or nothing. It answers {"added":N,"updated":M}.
func (s *server) importUsers(w http.ResponseWriter, r *http.Request) error {
	rows, err := ParseStaffCSV(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		return err
	}
	added, updated, err := s.cfg.DB.ImportStaff(rows)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
		}
		return err
	}
	writeJSON(w, http.StatusOK, ImportResult{Added: added, Updated: updated})
	return nil
}

// ParseStaffCSV reads a staff directory: a header row naming exactly the
// columns employee_no, name, bind_code and can_scan (in any order), then one
// row per person. Fields are trimmed, a UTF-8 BOM is skipped and blank lines
// are ignored. can_scan accepts true/false, 1/0, yes/no, y/n and 是/否 (any
// case); empty means false. The first bad row fails the whole file with a 400
// error naming its line ("line 4: bind_code is empty"): a missing
// employee_no or bind_code, a bad can_scan, a wrong number of fields, or an
// employee_no already seen in the file. An over-long body fails with a
// *http.MaxBytesError (413).
func ParseStaffCSV(body io.Reader) ([]store.Staff, error) {
	cr := csv.NewReader(body)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errorf(http.StatusBadRequest, "empty file: want a header row %s", strings.Join(staffColumns, ","))
	}
	if err != nil {
		return nil, csvError(err)
	}
	col := map[string]int{}
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if !isStaffColumn(name) {
			return nil, errorf(http.StatusBadRequest, "line %d: unknown column %q: want the header %s", headerLine(cr), name, strings.Join(staffColumns, ","))
		}
		if _, dup := col[name]; dup {
			return nil, errorf(http.StatusBadRequest, "line %d: column %s appears twice", headerLine(cr), name)
		}
		col[name] = i
	}
	for _, name := range staffColumns {
		if _, ok := col[name]; !ok {
			return nil, errorf(http.StatusBadRequest, "line %d: column %s is missing: want the header %s", headerLine(cr), name, strings.Join(staffColumns, ","))
		}
	}
	var rows []store.Staff
	seen := map[string]int{} // employee_no → line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return nil, errorf(http.StatusBadRequest, "line %d: %d fields, want %d", line, len(rec), len(header))
		}
		field := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		st := store.Staff{EmployeeNo: field("employee_no"), Name: field("name"), BindCode: field("bind_code")}
		if st.EmployeeNo == "" {
			return nil, errorf(http.StatusBadRequest, "line %d: employee_no is empty", line)
		}
		if st.BindCode == "" {
			return nil, errorf(http.StatusBadRequest, "line %d: bind_code is empty", line)
		}
		if st.CanScan, err = parseBool(field("can_scan")); err != nil {
			return nil, errorf(http.StatusBadRequest, "line %d: can_scan %q: want true/false, 1/0, yes/no, y/n or 是/否", line, field("can_scan"))
		}
		if first, dup := seen[st.EmployeeNo]; dup {
			return nil, errorf(http.StatusBadRequest, "line %d: employee_no %s repeats line %d", line, st.EmployeeNo, first)
		}
		seen[st.EmployeeNo] = line
		rows = append(rows, st)
	}
}

func isStaffColumn(name string) bool {
	for _, c := range staffColumns {
		if c == name {
			return true
		}
	}
	return false
}

// headerLine is the line the header row started on (1 unless blank lines
// precede it).
func headerLine(cr *csv.Reader) int {
	line, _ := cr.FieldPos(0)
	return line
}

// csvError turns a CSV syntax error into a 400 naming its line; other read
// errors (a body over the limit, a broken connection) pass through.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("line %d: %v", pe.Line, pe.Err), err: err}
	}
	return err
}

// parseBool reads can_scan.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false", "0", "no", "n", "否":
		return false, nil
	case "true", "1", "yes", "y", "是":
		return true, nil
	}
	return false, fmt.Errorf("bad boolean %q", v)
}
