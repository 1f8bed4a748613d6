package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestRecordScan_ItemMaster(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("s", t0)
	if err != nil {
		t.Fatal(err)
	}
	recordOne := func(code string, at time.Time) store.Recorded {
		t.Helper()
		var r store.Recorded
		err := db.Update(func(tx *store.Tx) error {
			var err error
			r, err = tx.RecordScan(scan(st.ID, "o1", code, at))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// No item master: every code is its own sku, nothing flagged.
	r := recordOne("690009", t0.Add(time.Second))
	if r.Unknown || r.Scan.SKU != "690009" || r.Scan.Name != "" {
		t.Fatalf("without item master: %+v", r)
	}
	mustItems(t, db, store.Item{Code: "690001", SKU: "S1", Name: "可乐"})
	r = recordOne("690001", t0.Add(2*time.Second))
	if r.Unknown || r.Scan.SKU != "S1" || r.Scan.Name != "可乐" || r.Count != 2 {
		t.Fatalf("known code: %+v", r)
	}
	r = recordOne("690009", t0.Add(3*time.Second))
	if !r.Unknown || r.Scan.SKU != "690009" || r.Scan.Name != "" {
		t.Fatalf("unknown code with item master: %+v", r)
	}
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := []string{scans[0].SKU, scans[1].SKU, scans[1].Name}, []string{"690009", "S1", "可乐"}; !slices.Equal(got, want) {
		t.Fatalf("stored sku/name=%q, want %q", got, want)
	}
}

func TestScanQtyAndCancel(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("s", t0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.OpenStocktake("closed later", t0) // fails: unscoped is open alone
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second open=%+v,%v", other, err)
	}
	setLocation(t, db, "o1", "A-01")
	at := t0.Add(time.Minute)
	record(t, db,
		scan(st.ID, "o1", "C1", at),
		scan(st.ID, "o1", "C2", at.Add(time.Second)),
		scan(st.ID, "o2", "C3", at.Add(2*time.Second)),
	)
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2, c3 := scans[0].Ref(), scans[1].Ref(), scans[2].Ref()
	now := at.Add(5 * time.Minute)

	type change func(tx *store.Tx) (store.Recorded, error)
	try := func(t *testing.T, fn change) (store.Recorded, error) {
		t.Helper()
		var r store.Recorded
		err := db.Update(func(tx *store.Tx) error {
			var err error
			r, err = fn(tx)
			return err
		})
		return r, err
	}
	count := func(openid string) int {
		var n int
		_ = db.View(func(tx *store.Tx) error { n = tx.ScanCount(st.ID, openid); return nil })
		return n
	}

	for _, tt := range []struct {
		name string
		fn   change
		want error
	}{
		{"qty 0", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c2, 0, now) }, store.ErrInvalid},
		{"qty 100000", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c2, 100000, now) }, store.ErrInvalid},
		{"someone else's", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c3, 5, now) }, store.ErrNotFound},
		{"undo someone else's", func(tx *store.Tx) (store.Recorded, error) { return tx.CancelScan("o2", c1, now) }, store.ErrNotFound},
		{"bad ref", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", "nonsense", 5, now) }, store.ErrNotFound},
		{"unknown seq", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", st.ID+"-99", 5, now) }, store.ErrNotFound},
		{"10 minutes old", func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c1, 5, at.Add(10*time.Minute)) }, store.ErrExpired},
		{"undo 10 minutes old", func(tx *store.Tx) (store.Recorded, error) { return tx.CancelScan("o1", c1, at.Add(11*time.Minute)) }, store.ErrExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := try(t, tt.fn); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			if got, want := count("o1"), 2; got != want {
				t.Fatalf("count after refusal=%d, want %d", got, want)
			}
		})
	}

	t.Run("latest", func(t *testing.T) {
		err := db.View(func(tx *store.Tx) error {
			s, err := tx.LatestScan("o1", now, true)
			if err != nil || s.Ref() != c2 {
				t.Fatalf("LatestScan=%s,%v, want %s", s.Ref(), err, c2)
			}
			if _, err := tx.LatestScan("o1", at.Add(time.Second+10*time.Minute), true); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("LatestScan after 10 min err=%v, want ErrNotFound", err)
			}
			if _, err := tx.LatestScan("o9", now, false); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("LatestScan of nobody err=%v, want ErrNotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("set qty", func(t *testing.T) {
		r, err := try(t, func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c2, 12, now) })
		if err != nil || r.Scan.Qty != 12 || r.Count != 13 {
			t.Fatalf("SetScanQty=%+v,%v, want qty 12 count 13", r, err)
		}
		if got, want := count("o1"), 13; got != want {
			t.Fatalf("count=%d, want %d", got, want)
		}
	})

	t.Run("undo twice", func(t *testing.T) {
		for i, want := range []struct {
			ref   string
			count int
		}{{c2, 1}, {c1, 0}} {
			r, err := try(t, func(tx *store.Tx) (store.Recorded, error) {
				s, err := tx.LatestScan("o1", now, true)
				if err != nil {
					return store.Recorded{}, err
				}
				return tx.CancelScan("o1", s.Ref(), now)
			})
			if err != nil || r.Scan.Ref() != want.ref || !r.Scan.Cancelled || r.Count != want.count {
				t.Fatalf("undo #%d=%+v,%v, want %s count %d", i+1, r, err, want.ref, want.count)
			}
		}
		// Nothing left to undo; the most recent one is there, cancelled.
		err := db.View(func(tx *store.Tx) error {
			if _, err := tx.LatestScan("o1", now, true); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("third undo err=%v, want ErrNotFound", err)
			}
			if s, err := tx.LatestScan("o1", now, false); err != nil || s.Ref() != c2 || !s.Cancelled {
				t.Fatalf("latest=%+v,%v, want cancelled %s", s, err, c2)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := try(t, func(tx *store.Tx) (store.Recorded, error) { return tx.CancelScan("o1", c1, now) }); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("cancel cancelled err=%v, want ErrConflict", err)
		}
		if _, err := try(t, func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o1", c1, 3, now) }); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("qty of cancelled err=%v, want ErrConflict", err)
		}
	})

	t.Run("cancelled left out", func(t *testing.T) {
		scans, err := db.Scans(st.ID)
		if err != nil || len(scans) != 1 || scans[0].Ref() != c3 {
			t.Fatalf("Scans=%+v,%v, want only %s", scans, err, c3)
		}
		var all []store.Scan
		if err := db.EachScanAll(st.ID, func(s store.Scan) error { all = append(all, s); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || !all[0].Cancelled || !all[1].Cancelled || all[1].Qty != 12 || all[2].Cancelled {
			t.Fatalf("EachScanAll=%+v", all)
		}
		sum, err := db.Summary(st.ID)
		if err != nil || !slices.Equal(sum, []store.SummaryRow{{Location: "", Code: "C3", Qty: 1}}) {
			t.Fatalf("Summary=%+v,%v", sum, err)
		}
		v, err := db.Variance(st.ID)
		if err != nil || len(v) != 1 || v[0] != (store.VarianceRow{SKU: "C3", Counted: 1, Difference: 1}) {
			t.Fatalf("Variance=%+v,%v", v, err)
		}
		p, err := db.Progress(st.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if p.Scans != 1 || p.Qty != 1 || p.Codes != 1 || p.Locations != 1 || p.People != 1 || p.Stocktake.Scans != 1 {
			t.Fatalf("Progress=%+v", p)
		}
		if !slices.Equal(p.ByLocation, []store.Count{{Key: "", Scans: 1, Qty: 1}}) ||
			!slices.Equal(p.ByPerson, []store.Count{{Key: "o2", EmployeeNo: "E-o2", Scans: 1, Qty: 1}}) {
			t.Fatalf("Progress counts=%+v %+v", p.ByLocation, p.ByPerson)
		}
		if len(p.Latest) != 3 || p.Latest[0].Ref() != c3 || !p.Latest[1].Cancelled {
			t.Fatalf("Progress latest=%+v", p.Latest)
		}
	})

	t.Run("recent", func(t *testing.T) {
		err := db.View(func(tx *store.Tx) error {
			recent, err := tx.RecentScans("o1", 10)
			if err != nil {
				return err
			}
			if len(recent) != 2 || recent[0].Ref() != c2 || recent[1].Ref() != c1 {
				t.Fatalf("RecentScans=%+v", recent)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("closed stocktake", func(t *testing.T) {
		if _, err := db.CloseStocktake(st.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, err := try(t, func(tx *store.Tx) (store.Recorded, error) { return tx.SetScanQty("o2", c3, 2, now) }); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("qty in closed err=%v, want ErrConflict", err)
		}
		err := db.View(func(tx *store.Tx) error {
			if _, err := tx.LatestScan("o2", now, false); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("latest in closed err=%v, want ErrNotFound", err)
			}
			if r, err := tx.RecentScans("o2", 10); err != nil || len(r) != 0 {
				t.Fatalf("recent with none open=%+v,%v", r, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A cancelled scan is left out of every count (SPEC §9), the status's scans
// of today (ScansSince) included; cancelling it again changes nothing more.
func TestScansSinceLeavesOutCancelled(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("s", t0)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	record(t, db, scan(st.ID, "o1", "C1", at), scan(st.ID, "o1", "C2", at), scan(st.ID, "o1", "C3", at.Add(time.Second)))
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	since := func() int {
		t.Helper()
		n, err := db.ScansSince(t0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cancel := func(ref string) error {
		return db.Update(func(tx *store.Tx) error {
			_, err := tx.CancelScan("o1", ref, at.Add(time.Minute))
			return err
		})
	}
	if err := cancel(scans[0].Ref()); err != nil {
		t.Fatal(err)
	}
	if got := since(); got != 2 {
		t.Fatalf("ScansSince after one cancel=%d, want 2", got)
	}
	if err := cancel(scans[0].Ref()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second cancel err=%v, want ErrConflict", err)
	}
	if err := cancel(scans[2].Ref()); err != nil {
		t.Fatal(err)
	}
	if got := since(); got != 1 {
		t.Fatalf("ScansSince after two cancels=%d, want 1", got)
	}
	if n, err := db.ScansSince(at.Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("ScansSince(the cancelled scan's second)=%d,%v, want 0", n, err)
	}
}

// A person's latest scans are kept by reference in one short entry and the
// older ones in the scan index (indexScan): finding them, newest first,
// crosses from one to the other without a gap or a repeat, skips other
// people's scans and closed stocktakes, and survives a reopen.
func TestOwnScansAcrossTheRecentEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db := MustOpenPath(t, path, store.Options{NoSync: true})
	a, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "A", Locations: []string{"A-"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "B", Locations: []string{"B-"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	var mine []string // o1's scans in A, in recorded order
	// 10 in A, then 40 in B (closed below), then 60 in A: several times
	// what one entry holds, each batch with someone else's scans between.
	for _, part := range []struct {
		st  store.Stocktake
		loc string
		n   int
	}{{a, "A-01", 10}, {b, "B-01", 40}, {a, "A-02", 60}} {
		setLocation(t, db, "o1", part.loc)
		setLocation(t, db, "o2", part.loc)
		for i := 0; i < part.n; i += 7 {
			var batch []store.Scan
			for j := i; j < min(i+7, part.n); j++ {
				at = at.Add(time.Millisecond)
				batch = append(batch, scan(part.st.ID, "o1", fmt.Sprintf("%s-%d", part.loc, j), at), scan(part.st.ID, "o2", fmt.Sprintf("x%d", j), at))
			}
			record(t, db, batch...)
		}
	}
	if _, err := db.CloseStocktake(b.ID, at); err != nil {
		t.Fatal(err)
	}
	scans, err := db.Scans(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scans {
		if s.OpenID == "o1" {
			mine = append(mine, s.Ref())
		}
	}
	if got, want := len(mine), 70; got != want {
		t.Fatalf("o1 has %d scans in A, want %d", got, want)
	}
	newestFirst := slices.Clone(mine)
	slices.Reverse(newestFirst)

	check := func(t *testing.T, db *store.DB) {
		t.Helper()
		err := db.View(func(tx *store.Tx) error {
			recent, err := tx.RecentScans("o1", 100)
			if err != nil {
				return err
			}
			var got []string
			for _, s := range recent {
				got = append(got, s.Ref())
			}
			if !slices.Equal(got, newestFirst) {
				t.Fatalf("RecentScans=%v\nwant %v", got, newestFirst)
			}
			if recent, err := tx.RecentScans("o1", 5); err != nil || len(recent) != 5 || recent[4].Ref() != newestFirst[4] {
				t.Fatalf("RecentScans(5)=%+v,%v", recent, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpenPath(t, path, store.Options{NoSync: true})
	check(t, db)

	// Undo after undo walks back through all 70, then finds nothing.
	now := at.Add(time.Minute)
	for i, want := range newestFirst {
		err := db.Update(func(tx *store.Tx) error {
			s, err := tx.LatestScan("o1", now, true)
			if err != nil {
				return err
			}
			if s.Ref() != want {
				t.Fatalf("undo %d: latest=%s, want %s", i+1, s.Ref(), want)
			}
			_, err = tx.CancelScan("o1", s.Ref(), now)
			return err
		})
		if err != nil {
			t.Fatalf("undo %d: %v", i+1, err)
		}
	}
	err = db.View(func(tx *store.Tx) error {
		if s, err := tx.LatestScan("o1", now, true); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after 70 undos latest=%s,%v, want ErrNotFound", s.Ref(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
