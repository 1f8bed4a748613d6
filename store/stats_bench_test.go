package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

// bigStocktake is a stocktake of 100,000 scans by 50 people over 2,000
// locations and 20,000 book-stock rows, with an item master of 10,000 codes.
func bigStocktake(b *testing.B) (*store.DB, string) {
	b.Helper()
	db := MustOpen(b)
	items := make([]store.Item, 10_000)
	for i := range items {
		items[i] = store.Item{Code: fmt.Sprintf("69%011d", i), SKU: fmt.Sprintf("SKU%05d", i), Name: fmt.Sprintf("商品 %d", i)}
	}
	mustItems(b, db, items...)
	expected := make([]store.Expected, 20_000)
	for i := range expected {
		expected[i] = store.Expected{Location: fmt.Sprintf("A-%04d", i%2000), SKU: fmt.Sprintf("SKU%05d", i), Qty: 1 + i%7}
	}
	st, err := db.OpenStocktakeSpec(store.StocktakeSpec{Name: "big", Expected: expected}, t0)
	if err != nil {
		b.Fatal(err)
	}
	const n, perUpdate = 100_000, 10_000
	for done := 0; done < n; done += perUpdate {
		err := db.Update(func(tx *store.Tx) error {
			for i := done; i < done+perUpdate; i++ {
				_, err := tx.RecordScan(store.Scan{
					StocktakeID: st.ID, OpenID: fmt.Sprintf("o%02d", i%50), EmployeeNo: fmt.Sprintf("E%02d", i%50),
					CodeType: "EAN_13", Code: fmt.Sprintf("69%011d", (i*7)%12_000), Location: fmt.Sprintf("A-%04d", i%2000),
					Qty: 1, ScannedAt: t0.Add(time.Duration(i) * time.Millisecond), EventID: fmt.Sprint("e", i),
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db, st.ID
}

// BenchmarkVariance is the variance of a stocktake of 100,000 scans and
// 20,000 book-stock rows (the limit is 2 s).
func BenchmarkVariance(b *testing.B) {
	db, id := bigStocktake(b)
	for b.Loop() {
		rows, err := db.Variance(id)
		if err != nil || len(rows) < 20_000 {
			b.Fatalf("rows=%d, %v", len(rows), err)
		}
	}
}

// BenchmarkProgress is the console's view of a stocktake of 100,000 scans:
// totals, counts per location and per person, the latest 50 scans (the
// page's budget is 300 ms).
func BenchmarkProgress(b *testing.B) {
	db, id := bigStocktake(b)
	for b.Loop() {
		p, err := db.Progress(id, 50)
		if err != nil || p.Scans != 100_000 || len(p.ByLocation) != 2000 || len(p.ByPerson) != 50 {
			b.Fatalf("progress=%d scans, %d locations, %d people, %v", p.Scans, len(p.ByLocation), len(p.ByPerson), err)
		}
	}
}
