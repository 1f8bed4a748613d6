package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxscan/wxscan/store"
)

// StaffColumns are the columns of a staff directory import, in any order.
var StaffColumns = []ImportColumn{
	{Name: "employee_no", MaxBytes: store.MaxEmployeeNoLen},
	{Name: "name", MaxBytes: MaxNameBytes},
	{Name: "bind_code", MaxBytes: store.MaxBindCodeLen},
	{Name: "can_scan", MaxBytes: MaxKeyBytes},
}

// importUsers is POST /admin/users/import: the body is a staff directory,
// CSV or XLSX (see ParseStaff), imported all or nothing. It answers
// {"added":N,"updated":M}.
func (s *server) importUsers(w http.ResponseWriter, r *http.Request) error {
	res, err := ImportUsers(s.cfg.DB, http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// ImportUsers reads a staff directory file with ParseStaff and imports it,
// all or nothing: what POST /admin/users/import does and what the console's
// form calls. A bad row is a 400 answer naming its line.
func ImportUsers(db *store.DB, body io.Reader) (ImportResult, error) {
	rows, err := ParseStaff(body)
	if err != nil {
		return ImportResult{}, err
	}
	added, updated, err := db.ImportStaff(rows)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return ImportResult{}, errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
		}
		return ImportResult{}, err
	}
	return ImportResult{Added: added, Updated: updated}, nil
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

// listUsers is GET /admin/users: the staff directory sorted by
// employee_no, each person with their binding and bind lockout.
func (s *server) listUsers(w http.ResponseWriter, r *http.Request) error {
	list, err := Users(s.cfg.DB, s.cfg.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// Users returns the staff directory sorted by employee_no, each person with
// their binding and their bind lockout as they stand at now (never the bind
// code). It is what GET /admin/users answers and what the console shows.
func Users(db *store.DB, now time.Time) ([]User, error) {
	staff, err := db.StaffList()
	if err != nil {
		return nil, err
	}
	bindings, err := db.Bindings()
	if err != nil {
		return nil, err
	}
	lockouts, err := db.BindLockouts(now)
	if err != nil {
		return nil, err
	}
	byEmp := make(map[string]store.Binding, len(bindings))
	for _, b := range bindings {
		byEmp[b.EmployeeNo] = b
	}
	locks := map[string]store.BindCounter{}
	for _, l := range lockouts {
		if l.EmployeeNo != "" {
			locks[l.EmployeeNo] = l.BindCounter
		}
	}
	out := make([]User, 0, len(staff))
	for _, st := range staff {
		out = append(out, userOf(st, byEmp, locks, now))
	}
	return out, nil
}

func userOf(st store.Staff, byEmp map[string]store.Binding, locks map[string]store.BindCounter, now time.Time) User {
	u := User{EmployeeNo: st.EmployeeNo, Name: st.Name, CanScan: st.CanScan, State: UserUnbound}
	if b, ok := byEmp[st.EmployeeNo]; ok {
		u.State, u.OpenID, u.BoundAt = b.State, b.OpenID, b.BoundAt
	}
	if c, ok := locks[st.EmployeeNo]; ok {
		u.BindFailures = c.Failures
		if c.Locked(now) {
			u.LockedUntil = c.LockedUntil
		}
	}
	return u
}

// unlockUser is POST /admin/users/{employee_no}/unlock: it lifts the
// employee's bind lockout and forgets their wrong codes, and answers the
// User. Idempotent; 404 for an employee number not in the directory.
func (s *server) unlockUser(w http.ResponseWriter, r *http.Request) error {
	emp := r.PathValue("employee_no")
	u, err := UnlockUser(s.cfg.DB, emp, s.cfg.Now())
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("admin unlocked employee", "employee_no", emp)
	writeJSON(w, http.StatusOK, u)
	return nil
}

// UnlockUser lifts employeeNo's bind lockout (SPEC §11) and returns the
// person as Users shows them. Idempotent. An employee number not in the
// staff directory is a 404 answer.
func UnlockUser(db *store.DB, employeeNo string, now time.Time) (User, error) {
	st, err := db.Staff(employeeNo)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, explain(err, "no employee %s in the staff directory", employeeNo)
	}
	if err != nil {
		return User{}, err
	}
	if err := db.UnlockEmployee(employeeNo); err != nil {
		return User{}, err
	}
	byEmp := map[string]store.Binding{}
	if bindings, err := db.Bindings(); err == nil {
		for _, b := range bindings {
			byEmp[b.EmployeeNo] = b
		}
	} else {
		return User{}, err
	}
	return userOf(st, byEmp, nil, now), nil
}

// unlockOpenID is POST /admin/bindings/{openid}/unlock: it lifts the bind
// lockout of a WeChat user (10 wrong codes from one openid, SPEC §11) and
// answers 204. Idempotent: an openid without wrong codes is not an error.
func (s *server) unlockOpenID(w http.ResponseWriter, r *http.Request) error {
	openid := r.PathValue("openid")
	if err := s.cfg.DB.UnlockOpenID(openid); err != nil {
		return err
	}
	s.cfg.Logger.Info("admin unlocked openid", "openid", openid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
