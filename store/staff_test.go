package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wxscan/wxscan/store"
)

func TestImportStaff(t *testing.T) {
	db := MustOpen(t)
	added, updated, err := db.ImportStaff([]store.Staff{
		{EmployeeNo: "E1", Name: "Ann", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E2", Name: "Bob", BindCode: "222222"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [2]int{added, updated}, [2]int{2, 0}; got != want {
		t.Fatalf("added, updated=%v, want %v", got, want)
	}

	added, updated, err = db.ImportStaff([]store.Staff{
		{EmployeeNo: "E1", Name: "Ann", BindCode: "111111", CanScan: true}, // unchanged
		{EmployeeNo: "E2", Name: "Bob", BindCode: "999999", CanScan: true}, // changed
		{EmployeeNo: "E3", Name: "Cai", BindCode: "333333"},                // new
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [2]int{added, updated}, [2]int{1, 1}; got != want {
		t.Fatalf("added, updated=%v, want %v", got, want)
	}
	s, err := db.Staff("E2")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s, (store.Staff{EmployeeNo: "E2", Name: "Bob", BindCode: "999999", CanScan: true}); got != want {
		t.Fatalf("Staff=%+v, want %+v", got, want)
	}
	list, err := db.StaffList()
	if err != nil {
		t.Fatal(err)
	}
	var nos []string
	for _, s := range list {
		nos = append(nos, s.EmployeeNo)
	}
	if got, want := nos, []string{"E1", "E2", "E3"}; !slices.Equal(got, want) {
		t.Fatalf("StaffList=%v, want %v", got, want)
	}
}

func TestImportStaff_AllOrNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		rows []store.Staff
	}{
		{"empty employee_no", []store.Staff{{EmployeeNo: "E9", BindCode: "999999"}, {EmployeeNo: "", BindCode: "111111"}}},
		{"empty bind_code", []store.Staff{{EmployeeNo: "E9", BindCode: "999999"}, {EmployeeNo: "E8"}}},
		{"duplicate", []store.Staff{{EmployeeNo: "E9", BindCode: "999999"}, {EmployeeNo: "E9", BindCode: "888888"}}},
		{"short bind_code", []store.Staff{{EmployeeNo: "E9", BindCode: "999999"}, {EmployeeNo: "E8", BindCode: "1"}}},
		{"five-character bind_code", []store.Staff{{EmployeeNo: "E9", BindCode: "999999"}, {EmployeeNo: "E8", BindCode: "一二三四五"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", Name: "Ann", BindCode: "111111"}}); err != nil {
				t.Fatal(err)
			}
			added, updated, err := db.ImportStaff(append([]store.Staff{{EmployeeNo: "E1", Name: "Changed", BindCode: "111111"}}, tt.rows...))
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
			if added != 0 || updated != 0 {
				t.Fatalf("added, updated=%d, %d after failure, want 0, 0", added, updated)
			}
			if _, err := db.Staff("E9"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Staff(E9) err=%v, want ErrNotFound", err)
			}
			s, err := db.Staff("E1")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.Name, "Ann"; got != want {
				t.Fatalf("name=%q, want %q (unchanged)", got, want)
			}
		})
	}
}

// A bind code has at least 6 characters (SPEC §11): characters, not bytes.
func TestImportStaff_BindCodeLength(t *testing.T) {
	db := MustOpen(t)
	_, _, err := db.ImportStaff([]store.Staff{
		{EmployeeNo: "E1", BindCode: "123456"},
		{EmployeeNo: "E2", BindCode: "1"},
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bind code 1: err=%v, want ErrInvalid", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "row 2 (E2)") || !strings.Contains(msg, "at least 6") {
		t.Fatalf("error %q does not name row 2 and the rule", msg)
	}
	if _, err := db.Staff("E1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("E1 stored from a refused import: %v", err)
	}
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", BindCode: "一二三四五六"}, {EmployeeNo: "E2", BindCode: "abcdef"}}); err != nil {
		t.Fatalf("six-character bind codes: %v", err)
	}
}

func TestStaff_NotFound(t *testing.T) {
	db := MustOpen(t)
	for _, no := range []string{"", "nobody"} {
		if _, err := db.Staff(no); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Staff(%q) err=%v, want ErrNotFound", no, err)
		}
	}
}
