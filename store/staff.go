package store

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MinBindCodeLen is the fewest characters a bind code may have (SPEC §11).
const MinBindCodeLen = 6

// Length limits (bytes) of a staff row's keys (SPEC §11).
const (
	MaxEmployeeNoLen = 64
	MaxBindCodeLen   = 64
)

// Staff is one row of the staff directory.
type Staff struct {
	EmployeeNo string `json:"employee_no"`
	Name       string `json:"name"`
	BindCode   string `json:"bind_code"`
	CanScan    bool   `json:"can_scan"`
}

// ImportStaff adds or replaces the given rows, all or nothing, in one
// transaction. Rows not in the import are kept. updated counts existing rows
// whose content changed; re-importing the same file reports 0 added, 0
// updated. A row with an empty EmployeeNo, a BindCode shorter than
// MinBindCodeLen characters, or an EmployeeNo repeated within rows, fails
// the whole import with ErrInvalid (the error names the row, counting from
// 1).
func (db *DB) ImportStaff(rows []Staff) (added, updated int, err error) {
	err = db.Update(func(tx *Tx) error {
		added, updated = 0, 0
		b := tx.tx.Bucket(bucketStaff)
		seen := make(map[string]int, len(rows))
		for i, row := range rows {
			if row.EmployeeNo == "" {
				return fmt.Errorf("store: import staff: row %d: empty employee_no: %w", i+1, ErrInvalid)
			}
			if row.BindCode == "" {
				return fmt.Errorf("store: import staff: row %d (%s): empty bind_code: %w", i+1, row.EmployeeNo, ErrInvalid)
			}
			if n := utf8.RuneCountInString(row.BindCode); n < MinBindCodeLen {
				return fmt.Errorf("store: import staff: row %d (%s): bind_code has %d characters, at least %d are needed: %w",
					i+1, row.EmployeeNo, n, MinBindCodeLen, ErrInvalid)
			}
			if first, ok := seen[row.EmployeeNo]; ok {
				return fmt.Errorf("store: import staff: row %d: employee_no %s repeats row %d: %w", i+1, row.EmployeeNo, first, ErrInvalid)
			}
			seen[row.EmployeeNo] = i + 1
			var old Staff
			found, err := getJSON(b, row.EmployeeNo, &old)
			if err != nil {
				return fmt.Errorf("store: import staff %s: %w", row.EmployeeNo, err)
			}
			switch {
			case !found:
				added++
			case old != row:
				updated++
			default:
				continue
			}
			if err := putJSON(b, row.EmployeeNo, row); err != nil {
				return fmt.Errorf("store: import staff %s: %w", row.EmployeeNo, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return added, updated, nil
}

// Staff returns the directory row for employeeNo, or an error wrapping ErrNotFound.
func (db *DB) Staff(employeeNo string) (Staff, error) {
	var s Staff
	err := db.View(func(tx *Tx) error {
		var err error
		s, err = tx.Staff(employeeNo)
		return err
	})
	return s, err
}

// Staff returns the directory row for employeeNo, or an error wrapping ErrNotFound.
func (tx *Tx) Staff(employeeNo string) (Staff, error) {
	var s Staff
	found, err := getJSON(tx.tx.Bucket(bucketStaff), employeeNo, &s)
	if err != nil {
		return Staff{}, fmt.Errorf("store: staff %s: %w", employeeNo, err)
	}
	if !found || employeeNo == "" {
		return Staff{}, fmt.Errorf("store: staff %q: %w", employeeNo, ErrNotFound)
	}
	return s, nil
}

// StaffList returns the whole directory sorted by employee_no.
func (db *DB) StaffList() ([]Staff, error) {
	var out []Staff
	err := db.View(func(tx *Tx) error {
		return tx.tx.Bucket(bucketStaff).ForEach(func(k, v []byte) error {
			var s Staff
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("store: staff list: decode %q: %w", k, err)
			}
			out = append(out, s)
			return nil
		})
	})
	return out, err
}
