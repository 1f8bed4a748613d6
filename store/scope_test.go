package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestScopesOverlap(t *testing.T) {
	for _, tt := range []struct {
		a, b []string
		want bool
	}{
		{[]string{"A-"}, []string{"A-0"}, true},
		{[]string{"A-0"}, []string{"A-"}, true},
		{[]string{"A-"}, []string{"B-"}, false},
		{[]string{"A-", "C-"}, []string{"B-", "C-1"}, true},
		{nil, []string{"B-"}, true},
		{[]string{"A-"}, nil, true},
		{[]string{"A-1"}, []string{"A-2"}, false},
	} {
		if got := store.ScopesOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("ScopesOverlap(%q, %q)=%v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestOpenStocktakeSpec_Scopes(t *testing.T) {
	db := MustOpen(t)
	a, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "A 区", Locations: []string{"A-"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "B 区", Locations: []string{" B- ", "B-"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Locations; len(got) != 1 || got[0] != "B-" {
		t.Fatalf("locations=%q, want [B-]", got)
	}
	if a.ID != "ST0001" || b.ID != "ST0002" {
		t.Fatalf("ids=%s,%s", a.ID, b.ID)
	}
	for _, tt := range []struct {
		name string
		locs []string
		want string
	}{
		{"nested prefix", []string{"A-0"}, "ST0001 (A 区) is open"},
		{"one of two", []string{"C-", "B-1"}, "ST0002 (B 区) is open"},
		{"everything", nil, "ST0001 (A 区) is open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "x", Locations: tt.locs}, t0)
			if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want ErrConflict naming %q", err, tt.want)
			}
		})
	}
	open, err := db.OpenStocktakesNow()
	if err != nil || len(open) != 2 {
		t.Fatalf("open=%+v,%v, want 2", open, err)
	}
	err = db.View(func(tx *store.Tx) error {
		for loc, want := range map[string]string{"A-01": a.ID, "B-07": b.ID, "C-01": "", "": ""} {
			st, err := tx.StocktakeFor(loc)
			if want == "" {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("StocktakeFor(%q) err=%v, want ErrNotFound", loc, err)
				}
				continue
			}
			if err != nil || st.ID != want {
				t.Fatalf("StocktakeFor(%q)=%s,%v, want %s", loc, st.ID, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Closing A frees its scope.
	if _, err := db.CloseStocktake(a.ID, t0); err != nil {
		t.Fatal(err)
	}
	if st, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "A 区 复盘", Locations: []string{"A-0"}}, t0); err != nil || st.ID != "ST0003" {
		t.Fatalf("reopen A-0=%+v,%v", st, err)
	}
	// An unscoped stocktake is open alone.
	db2 := MustOpen(t)
	if _, err := db2.OpenStocktake("全仓", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.OpenStocktakeSpec(store.StocktakeSpec{Name: "B", Locations: []string{"B-"}}, t0); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "ST0001 (全仓) is open and covers every location") {
		t.Fatalf("scoped beside unscoped err=%v", err)
	}
}

func TestOpenStocktakeSpec_BadBookStock(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec store.StocktakeSpec
		want string
	}{
		{"repeated row", store.StocktakeSpec{Name: "s", Expected: []store.Expected{{"A-1", "S1", 1}, {"A-1", "S1", 2}}}, "row 2: location \"A-1\" sku \"S1\" repeats row 1"},
		{"empty sku", store.StocktakeSpec{Name: "s", Expected: []store.Expected{{"A-1", "S1", 1}, {"A-1", "", 2}}}, "row 2: sku"},
		{"negative qty", store.StocktakeSpec{Name: "s", Expected: []store.Expected{{"A-1", "S1", -1}}}, "row 1: qty -1 is negative"},
		{"outside scope", store.StocktakeSpec{Name: "s", Locations: []string{"A-"}, Expected: []store.Expected{{"B-1", "S1", 1}}}, "row 1: location \"B-1\" is outside"},
		{"long location", store.StocktakeSpec{Name: "s", Expected: []store.Expected{{strings.Repeat("L", 65), "S1", 1}}}, "row 1: location too long"},
		{"empty prefix", store.StocktakeSpec{Name: "s", Locations: []string{"A-", ""}}, "location prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			_, err := db.OpenStocktakeSpec(tt.spec, t0)
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want ErrInvalid with %q", err, tt.want)
			}
			if list, err := db.Stocktakes(); err != nil || len(list) != 0 {
				t.Fatalf("stocktakes after refused open=%+v,%v", list, err)
			}
		})
	}
}

// A stocktake keeps its scope and book stock; the variance merges them with
// the counts row by row.
func TestVariance(t *testing.T) {
	db := MustOpen(t)
	mustItems(t, db,
		store.Item{Code: "690001", SKU: "S1", Name: "可乐"},
		store.Item{Code: "690001-old", SKU: "S1", Name: "可乐"},
		store.Item{Code: "690002", SKU: "S2", Name: "雪碧"},
	)
	st, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "A", Locations: []string{"A-"}, Expected: []store.Expected{
		{"A-01", "S1", 5}, {"A-01", "S2", 2}, {"A-02", "S1", 3}, {"A-03", "S9", 0},
	}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.ExpectedRows, 4; got != want {
		t.Fatalf("ExpectedRows=%d, want %d", got, want)
	}
	at := t0.Add(time.Minute)
	setLocation(t, db, "o1", "A-01")
	record(t, db,
		scan(st.ID, "o1", "690001", at),
		scan(st.ID, "o1", "690001-old", at.Add(1*time.Second)), // same sku, other code
		scan(st.ID, "o1", "690002", at.Add(2*time.Second)),
		scan(st.ID, "o1", "UNKNOWN", at.Add(3*time.Second)),
	)
	setLocation(t, db, "o1", "A-04")
	record(t, db, scan(st.ID, "o1", "690002", at.Add(4*time.Second)))
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	// 690002 at A-01 ×3, then cancel the A-04 one.
	err = db.Update(func(tx *store.Tx) error {
		if _, err := tx.SetScanQty("o1", scans[2].Ref(), 3, at.Add(time.Minute)); err != nil {
			return err
		}
		_, err := tx.CancelScan("o1", scans[4].Ref(), at.Add(time.Minute))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Variance(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.VarianceRow{
		{Location: "A-01", SKU: "S1", Name: "可乐", Expected: 5, Counted: 2, Difference: -3},
		{Location: "A-01", SKU: "S2", Name: "雪碧", Expected: 2, Counted: 3, Difference: 1},
		{Location: "A-01", SKU: "UNKNOWN", Name: "", Expected: 0, Counted: 1, Difference: 1},
		{Location: "A-02", SKU: "S1", Name: "可乐", Expected: 3, Counted: 0, Difference: -3},
		{Location: "A-03", SKU: "S9", Name: "", Expected: 0, Counted: 0, Difference: 0},
	}
	if len(got) != len(want) {
		t.Fatalf("variance=%+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d=%+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := db.Variance("ST0404"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Variance(unknown) err=%v, want ErrNotFound", err)
	}
}
