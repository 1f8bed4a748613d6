package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/wxscan/wxscan/store"
)

// StaffColumns are the columns of a staff directory import, in any order.
var StaffColumns = []ImportColumn{
	{Name: "employee_no", MaxBytes: MaxKeyBytes},
	{Name: "name", MaxBytes: MaxNameBytes},
	{Name: "bind_code", MaxBytes: MaxKeyBytes},
	{Name: "can_scan", MaxBytes: MaxKeyBytes},
}

// importUsers is POST /admin/users/import: the body is a staff directory,
// CSV or XLSX (see ParseStaff), imported all or nothing. It answers
// {"added":N,"updated":M}.
func (s *server) importUsers(w http.ResponseWriter, r *http.Request) error {
	rows, err := ParseStaff(http.MaxBytesReader(w, r.Body, MaxImportBytes))
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

// ParseStaff reads a staff directory, CSV or XLSX as ReadTable reads it,
// with the header columns StaffColumns: employee_no, name, bind_code and
// can_scan. can_scan accepts true/false, 1/0, yes/no, y/n and 是/否 (any
// case); empty means false. The first bad row fails the whole file with a
// 400 error wrapping a *LineError ("line 4: bind_code is empty"): an empty
// employee_no, a bind_code empty or shorter than store.MinBindCodeLen, a bad
// can_scan, a value over its length limit, or an employee_no already seen
// in the file. An over-long body fails with a *http.MaxBytesError (413).
func ParseStaff(body io.Reader) ([]store.Staff, error) {
	var rows []store.Staff
	seen := map[string]int{} // employee_no → line
	err := ReadTable(body, StaffColumns, func(row Row) error {
		st := store.Staff{EmployeeNo: row.Get("employee_no"), Name: row.Get("name"), BindCode: row.Get("bind_code")}
		if st.EmployeeNo == "" {
			return lineErrorf(row.Line, "employee_no is empty")
		}
		switch n := utf8.RuneCountInString(st.BindCode); {
		case n == 0:
			return lineErrorf(row.Line, "bind_code is empty")
		case n < store.MinBindCodeLen:
			return lineErrorf(row.Line, "bind_code must be at least %d characters", store.MinBindCodeLen)
		}
		var err error
		if st.CanScan, err = parseBool(row.Get("can_scan")); err != nil {
			return lineErrorf(row.Line, "can_scan %q: want true/false, 1/0, yes/no, y/n or 是/否", row.Get("can_scan"))
		}
		if first, dup := seen[st.EmployeeNo]; dup {
			return lineErrorf(row.Line, "employee_no %s repeats line %d", st.EmployeeNo, first)
		}
		seen[st.EmployeeNo] = row.Line
		rows = append(rows, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// ParseStaffCSV is ParseStaff, which reads XLSX too.
//
// Deprecated: use ParseStaff.
func ParseStaffCSV(body io.Reader) ([]store.Staff, error) { return ParseStaff(body) }

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
