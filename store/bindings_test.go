package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

// mustStaff imports staff E1 (Ann), E2 (Bob) and E3 (Cai).
func mustStaff(tb testing.TB, db *store.DB) {
	tb.Helper()
	_, _, err := db.ImportStaff([]store.Staff{
		{EmployeeNo: "E1", Name: "Ann", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E2", Name: "Bob", BindCode: "222222", CanScan: true},
		{EmployeeNo: "E3", Name: "Cai", BindCode: "333333"},
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// bindingsOf returns "employee=openid" for every binding, in order.
func bindingsOf(tb testing.TB, db *store.DB) []string {
	tb.Helper()
	bs, err := db.Bindings()
	if err != nil {
		tb.Fatal(err)
	}
	out := []string{}
	for _, b := range bs {
		out = append(out, b.EmployeeNo+"="+b.OpenID)
	}
	return out
}

func TestBind(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	b, err := db.Bind("o1", "E1", "u1", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Binding{OpenID: "o1", EmployeeNo: "E1", Name: "Ann", UnionID: "u1", State: store.StateActive, BoundAt: t0}
	if got := b; got != want {
		t.Fatalf("Bind=%+v, want %+v", got, want)
	}
	got, err := db.BindingByOpenID("o1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("BindingByOpenID=%+v, want %+v", got, want)
	}

	// Binding the same pair again is idempotent: BoundAt and UnionID stay.
	again, err := db.Bind("o1", "E1", "", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again != want {
		t.Fatalf("re-Bind=%+v, want %+v", again, want)
	}
}

func TestBind_Moves(t *testing.T) {
	for _, tt := range []struct {
		name  string
		binds [][2]string // openid, employee
		want  []string
		gone  []string // openids without a binding
	}{
		{"one", [][2]string{{"o1", "E1"}}, []string{"E1=o1"}, nil},
		{"two", [][2]string{{"o1", "E1"}, {"o2", "E2"}}, []string{"E1=o1", "E2=o2"}, nil},
		{"employee moves to a new openid", [][2]string{{"o1", "E1"}, {"o2", "E1"}}, []string{"E1=o2"}, []string{"o1"}},
		{"openid switches employee", [][2]string{{"o1", "E1"}, {"o1", "E2"}}, []string{"E2=o1"}, nil},
		{"both at once", [][2]string{{"o1", "E1"}, {"o2", "E2"}, {"o1", "E2"}}, []string{"E2=o1"}, []string{"o2"}},
		{"back and forth", [][2]string{{"o1", "E1"}, {"o2", "E1"}, {"o1", "E1"}}, []string{"E1=o1"}, []string{"o2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			mustStaff(t, db)
			for i, b := range tt.binds {
				if _, err := db.Bind(b[0], b[1], "", t0.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			got := bindingsOf(t, db)
			if len(got) != len(tt.want) {
				t.Fatalf("bindings=%v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("bindings=%v, want %v", got, tt.want)
				}
			}
			for _, openid := range tt.gone {
				if _, err := db.BindingByOpenID(openid); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("BindingByOpenID(%s) err=%v, want ErrNotFound", openid, err)
				}
			}
		})
	}
}

func TestBind_Errors(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	for _, tt := range []struct {
		name, openid, employee string
		want                   error
	}{
		{"unknown employee", "o1", "E404", store.ErrNotFound},
		{"empty openid", "", "E1", store.ErrInvalid},
		{"empty employee", "o1", "", store.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.Bind(tt.openid, tt.employee, "", t0); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
		})
	}
	if got := bindingsOf(t, db); len(got) != 0 {
		t.Fatalf("bindings=%v, want none", got)
	}
}

func TestBinding_NameFollowsDirectory(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	if _, err := db.Bind("o1", "E1", "", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", Name: "Anna", BindCode: "111111"}}); err != nil {
		t.Fatal(err)
	}
	b, err := db.BindingByOpenID("o1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Name, "Anna"; got != want {
		t.Fatalf("name=%q, want %q", got, want)
	}
}

func TestRemoveBinding(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	for _, b := range [][2]string{{"o1", "E1"}, {"o2", "E2"}} {
		if _, err := db.Bind(b[0], b[1], "", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RemoveBinding("o1"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveBinding("o1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second RemoveBinding err=%v, want ErrNotFound", err)
	}
	if _, err := db.BindingByOpenID("o1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BindingByOpenID err=%v, want ErrNotFound", err)
	}
	if got, want := bindingsOf(t, db), []string{"E2=o2"}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("bindings=%v, want %v", got, want)
	}
	// E1 can bind again, to any openid.
	if _, err := db.Bind("o3", "E1", "", t0); err != nil {
		t.Fatal(err)
	}
}

func TestSetBindingState(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	if _, err := db.Bind("o1", "E1", "", t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, openid, state string
		want                error
		wantState           string
	}{
		{"suspend", "o1", store.StateSuspended, nil, store.StateSuspended},
		{"suspend again", "o1", store.StateSuspended, nil, store.StateSuspended},
		{"restore", "o1", store.StateActive, nil, store.StateActive},
		{"bad state", "o1", "gone", store.ErrInvalid, store.StateActive},
		{"unknown openid", "o9", store.StateSuspended, store.ErrNotFound, store.StateActive},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.SetBindingState(tt.openid, tt.state); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			b, err := db.BindingByOpenID("o1")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b.State, tt.wantState; got != want {
				t.Fatalf("state=%q, want %q", got, want)
			}
		})
	}
	// Through a Tx as the unsubscribe handler does.
	err := db.Update(func(tx *store.Tx) error { return tx.SetBindingState("o1", store.StateSuspended) })
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Tx) error {
		b, err := tx.BindingByOpenID("o1")
		if err != nil {
			return err
		}
		if got, want := b.State, store.StateSuspended; got != want {
			t.Fatalf("state=%q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
