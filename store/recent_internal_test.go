package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// An entry written without the number of its refs (the first build of
// schema 6) is still read, and the next scan rewrites it with the number.
func TestRecentEntryWithoutCount(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	st, err := db.OpenStocktake("s", t0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	recordN := func(from, n int) {
		t.Helper()
		err := db.Update(func(tx *Tx) error {
			for i := from; i < from+n; i++ {
				r, err := tx.RecordScan(Scan{StocktakeID: st.ID, OpenID: "o1", EmployeeNo: "E1", CodeType: "EAN_13",
					Code: fmt.Sprintf("C%d", i), Qty: 1, ScannedAt: t0.Add(time.Duration(i) * time.Second), EventID: fmt.Sprintf("e%d", i)})
				if err != nil {
					return err
				}
				want = append(want, r.Scan.Ref())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	recordN(0, 20)
	// Rewrite the entry as the first build wrote it: the format, then refs.
	err = db.Update(func(tx *Tx) error {
		rb := tx.tx.Bucket(bucketRecentScans)
		refs, err := decodeRecent(rb.Get([]byte("o1")))
		if err != nil {
			return err
		}
		old := []byte{recentFormatUncounted}
		for _, r := range refs {
			old = appendRef(old, r)
		}
		return rb.Put([]byte("o1"), old)
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		t.Helper()
		var got []string
		err := db.View(func(tx *Tx) error {
			scans, err := tx.RecentScans("o1", 100)
			for _, s := range scans {
				got = append(got, s.Ref())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	newestFirst := func() []string { w := slices.Clone(want); slices.Reverse(w); return w }
	if got := list(); !slices.Equal(got, newestFirst()) {
		t.Fatalf("old entry lists %v, want %v", got, newestFirst())
	}
	// Past what one entry holds, so that the old entry spills too.
	recordN(20, 30)
	if got := list(); !slices.Equal(got, newestFirst()) {
		t.Fatalf("after 30 more scans lists %v, want %v", got, newestFirst())
	}
	err = db.View(func(tx *Tx) error {
		if v := tx.tx.Bucket(bucketRecentScans).Get([]byte("o1")); len(v) < 2 || v[0] != recentFormat {
			t.Fatalf("entry not rewritten with its count: % x", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
