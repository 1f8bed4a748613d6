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

func scan(stocktake, openid, code string, at time.Time) store.Scan {
	return store.Scan{
		StocktakeID: stocktake, OpenID: openid, EmployeeNo: "E-" + openid,
		CodeType: "EAN_13", Code: code, Qty: 1, ScannedAt: at, EventID: fmt.Sprintf("%s-%s-%d", openid, code, at.UnixNano()),
	}
}

// record records scans in one Update, each guarded by its event id, as the
// scan consumer does, and returns the running counts.
func record(tb testing.TB, db *store.DB, scans ...store.Scan) []int {
	tb.Helper()
	var counts []int
	err := db.Update(func(tx *store.Tx) error {
		for _, s := range scans {
			if done, err := tx.Processed(s.EventID); err != nil {
				return err
			} else if done {
				continue
			}
			loc, err := tx.Location(s.OpenID)
			if err != nil {
				return err
			}
			s.Location = loc
			r, err := tx.RecordScan(s)
			if err != nil {
				return err
			}
			if err := tx.MarkProcessed(s.EventID, s.ScannedAt); err != nil {
				return err
			}
			counts = append(counts, r.Count)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return counts
}

func setLocation(tb testing.TB, db *store.DB, openid, loc string) {
	tb.Helper()
	if err := db.Update(func(tx *store.Tx) error { return tx.SetLocation(openid, loc) }); err != nil {
		tb.Fatal(err)
	}
}

func TestRecordScan(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	setLocation(t, db, "o1", "A-01")
	in := []store.Scan{
		scan(st.ID, "o1", "690001", t0.Add(1*time.Second)),
		scan(st.ID, "o2", "690002", t0.Add(2*time.Second)),
		scan(st.ID, "o1", "690001", t0.Add(3*time.Second)),
		scan(st.ID, "o1", "690003", t0.Add(4*time.Second)),
	}
	if got, want := record(t, db, in[:2]...), []int{1, 1}; !slices.Equal(got, want) {
		t.Fatalf("counts=%v, want %v", got, want)
	}
	setLocation(t, db, "o1", "B-02")
	// in[1] is a redelivery: nothing new.
	if got, want := record(t, db, in[1], in[2], in[3]), []int{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("counts=%v, want %v", got, want)
	}

	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(scans), 4; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	wantLoc := []string{"A-01", "", "B-02", "B-02"}
	for i, s := range scans {
		want := in[i]
		want.Location = wantLoc[i]
		want.SKU, want.Seq = want.Code, uint64(i+1)
		if s != want {
			t.Fatalf("scan %d=%+v, want %+v", i, s, want)
		}
	}

	got, err := db.Summary(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantSummary := []store.SummaryRow{
		{Location: "", Code: "690002", Qty: 1},
		{Location: "A-01", Code: "690001", Qty: 1},
		{Location: "B-02", Code: "690001", Qty: 1},
		{Location: "B-02", Code: "690003", Qty: 1},
	}
	if !slices.Equal(got, wantSummary) {
		t.Fatalf("Summary=%+v, want %+v", got, wantSummary)
	}

	open, err := db.OpenStocktakeNow()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := open.Scans, 4; got != want {
		t.Fatalf("stocktake scans=%d, want %d", got, want)
	}
	err = db.View(func(tx *store.Tx) error {
		if got, want := tx.ScanCount(st.ID, "o1"), 3; got != want {
			t.Fatalf("ScanCount(o1)=%d, want %d", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecordScan_CountsPerStocktake(t *testing.T) {
	db := MustOpen(t)
	st1, err := db.OpenStocktake("one", t0)
	if err != nil {
		t.Fatal(err)
	}
	record(t, db, scan(st1.ID, "o1", "1", t0.Add(time.Second)), scan(st1.ID, "o1", "2", t0.Add(2*time.Second)))
	if _, err := db.CloseStocktake(st1.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	st2, err := db.OpenStocktake("two", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := record(t, db, scan(st2.ID, "o1", "1", t0.Add(time.Hour+time.Second))), []int{1}; !slices.Equal(got, want) {
		t.Fatalf("counts=%v, want %v", got, want)
	}
	list, err := db.Stocktakes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := []int{list[0].Scans, list[1].Scans}, []int{2, 1}; !slices.Equal(got, want) {
		t.Fatalf("stocktake scans=%v, want %v", got, want)
	}
}

func TestRecordScan_Errors(t *testing.T) {
	db := MustOpen(t)
	closed, err := db.OpenStocktake("closed", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CloseStocktake(closed.ID, t0); err != nil {
		t.Fatal(err)
	}
	open, err := db.OpenStocktake("open", t0)
	if err != nil {
		t.Fatal(err)
	}
	good := scan(open.ID, "o1", "1", t0)
	for _, tt := range []struct {
		name   string
		change func(*store.Scan)
		want   error
	}{
		{"closed stocktake", func(s *store.Scan) { s.StocktakeID = closed.ID }, store.ErrConflict},
		{"unknown stocktake", func(s *store.Scan) { s.StocktakeID = "ST0404" }, store.ErrNotFound},
		{"no stocktake", func(s *store.Scan) { s.StocktakeID = "" }, store.ErrInvalid},
		{"no openid", func(s *store.Scan) { s.OpenID = "" }, store.ErrInvalid},
		{"no code", func(s *store.Scan) { s.Code = "" }, store.ErrInvalid},
		{"zero qty", func(s *store.Scan) { s.Qty = 0 }, store.ErrInvalid},
		{"zero time", func(s *store.Scan) { s.ScannedAt = time.Time{} }, store.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.change(&s)
			err := db.Update(func(tx *store.Tx) error {
				_, err := tx.RecordScan(s)
				return err
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
		})
	}
	if _, err := db.Scans("ST0404"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Scans(unknown) err=%v, want ErrNotFound", err)
	}
	if _, err := db.Summary("ST0404"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Summary(unknown) err=%v, want ErrNotFound", err)
	}
	if scans, err := db.Scans(open.ID); err != nil || len(scans) != 0 {
		t.Fatalf("Scans(empty)=%v, %v; want none", scans, err)
	}
}

// Exports read in chunks; order survives the chunk boundaries.
func TestScans_ManyInOrder(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("big", t0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	batch := make([]store.Scan, 0, n)
	for i := range n {
		batch = append(batch, scan(st.ID, fmt.Sprintf("o%d", i%7), fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond)))
	}
	record(t, db, batch...)
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(scans), n; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	for i, s := range scans {
		if got, want := s.Code, fmt.Sprint(i); got != want {
			t.Fatalf("scan %d code=%s, want %s", i, got, want)
		}
	}
	stop := errors.New("stop")
	var seen int
	if err := db.EachScan(st.ID, func(store.Scan) error { seen++; return stop }); err != stop || seen != 1 {
		t.Fatalf("EachScan stop=%v after %d, want %v after 1", err, seen, stop)
	}
}

func TestScansSince(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	midnight := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	record(t, db,
		scan(st.ID, "o1", "1", midnight.Add(-time.Second)),
		scan(st.ID, "o1", "2", midnight),
		scan(st.ID, "o1", "3", midnight.Add(time.Hour)),
		scan(st.ID, "o2", "4", midnight.Add(time.Hour)),
	)
	for _, tt := range []struct {
		name string
		t    time.Time
		want int
	}{
		{"all", time.Time{}, 4},
		{"today", midnight, 3},
		{"last hour", midnight.Add(time.Hour), 2},
		{"tomorrow", midnight.Add(24 * time.Hour), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := db.ScansSince(tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := n, tt.want; got != want {
				t.Fatalf("ScansSince=%d, want %d", got, want)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	db := MustOpen(t)
	for _, tt := range []struct {
		name, set, want string
	}{
		{"set", "A-01", "A-01"},
		{"change", "B-02", "B-02"},
		{"clear", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setLocation(t, db, "o1", tt.set)
			err := db.View(func(tx *store.Tx) error {
				loc, err := tx.Location("o1")
				if err != nil {
					return err
				}
				if got, want := loc, tt.want; got != want {
					t.Fatalf("Location=%q, want %q", got, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Tx exposes what the scan consumer needs to decide, in the same transaction.
func TestTx_Lookups(t *testing.T) {
	db := MustOpen(t)
	mustStaff(t, db)
	if _, err := db.Bind("o1", "E1", "", t0); err != nil {
		t.Fatal(err)
	}
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Tx) error {
		b, err := tx.BindingByOpenID("o1")
		if err != nil {
			return err
		}
		s, err := tx.Staff(b.EmployeeNo)
		if err != nil {
			return err
		}
		if !s.CanScan {
			t.Fatal("E1 cannot scan")
		}
		open, err := tx.OpenStocktakes()
		if err != nil {
			return err
		}
		if len(open) != 1 || open[0].ID != st.ID {
			t.Fatalf("open=%+v, want %s", open, st.ID)
		}
		if _, err := tx.BindingByOpenID("o9"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unbound err=%v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// benchScans records b.N scans, perUpdate per Update as the scan consumer does
// (EventProcessed, RecordScan, MarkEventProcessed), into a database with real
// fsync.
// With items > 0 an item master of that many codes is imported first, one
// of which every scanned code is.
func benchScans(b *testing.B, perUpdate, items int, opts store.Options) {
	db := MustOpenPath(b, filepath.Join(b.TempDir(), store.FileName), opts)
	if items > 0 {
		rows := make([]store.Item, items)
		for i := range rows {
			rows[i] = store.Item{Code: fmt.Sprintf("69%011d", i), SKU: fmt.Sprintf("SKU%06d", i/2), Name: fmt.Sprintf("商品 %d 号 500ml", i/2)}
		}
		if _, _, err := db.ImportItems(rows); err != nil {
			b.Fatal(err)
		}
	}
	st, err := db.OpenStocktake("bench", t0)
	if err != nil {
		b.Fatal(err)
	}
	scans := make([]store.Scan, perUpdate)
	var elapsed, cpu time.Duration // in Update only, not building the input
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += perUpdate {
		b.StopTimer()
		scans = scans[:min(perUpdate, b.N-done)]
		for i := range scans {
			n := done + i
			scans[i] = store.Scan{
				StocktakeID: st.ID, OpenID: fmt.Sprintf("oPENID-%022d", n%50), EmployeeNo: "E0042",
				CodeType: "EAN_13", Code: fmt.Sprintf("69%011d", n%5000), Location: "A-01", Qty: 1,
				ScannedAt: t0.Add(time.Duration(n) * time.Millisecond), EventID: fmt.Sprintf("oPENID-%022d:%d", n%50, n),
			}
		}
		b.StartTimer()
		start, cpuStart := time.Now(), cpuTime()
		err := db.Update(func(tx *store.Tx) error {
			for _, s := range scans {
				if done, err := tx.EventProcessed(s.EventID, s.ScannedAt); err != nil || done {
					return err
				}
				if _, err := tx.RecordScan(s); err != nil {
					return err
				}
				if err := tx.MarkEventProcessed(s.EventID, s.ScannedAt, s.ScannedAt); err != nil {
					return err
				}
			}
			return nil
		})
		elapsed += time.Since(start)
		cpu += cpuTime() - cpuStart
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "scans/s")
	if cpu > 0 { // scans per second of CPU: steady on a machine shared with other work
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "scans/cpu-s")
	}
}

// BenchmarkRecordScanBatch is the scan consumer's way: one Update (one fsync)
// per fetched batch of 256. Compare its scans/s with BenchmarkRecordScanOneByOne.
func BenchmarkRecordScanBatch(b *testing.B) { benchScans(b, 256, 0, store.Options{}) }

// BenchmarkRecordScanBatchItems is BenchmarkRecordScanBatch with an item
// master of 100,000 codes: its scans/s must be at least 0.9 of the former's.
func BenchmarkRecordScanBatchItems(b *testing.B) { benchScans(b, 256, 100_000, store.Options{}) }

// BenchmarkRecordScanBatchNoSync and BenchmarkRecordScanBatchItemsNoSync
// are the same without fsync: the CPU and page cost alone, which a shared
// disk's fsync times do not blur.
func BenchmarkRecordScanBatchNoSync(b *testing.B) { benchScans(b, 256, 0, store.Options{NoSync: true}) }

func BenchmarkRecordScanBatchItemsNoSync(b *testing.B) {
	benchScans(b, 256, 100_000, store.Options{NoSync: true})
}

// BenchmarkRecordScanBatch20 and BenchmarkRecordScanBatch20NoSync record
// 20 scans per Update: the batches the workers see with 64 staff waiting
// on their replies (wxbench's scan scenario), where the commit's fixed cost
// and the pages each scan dirties weigh more than at 256.
func BenchmarkRecordScanBatch20(b *testing.B) { benchScans(b, 20, 0, store.Options{}) }

func BenchmarkRecordScanBatch20NoSync(b *testing.B) {
	benchScans(b, 20, 0, store.Options{NoSync: true})
}

// BenchmarkRecordScanOneByOne commits (and fsyncs) every scan on its own.
func BenchmarkRecordScanOneByOne(b *testing.B) { benchScans(b, 1, 0, store.Options{}) }
