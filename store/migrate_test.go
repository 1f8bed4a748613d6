package store_test

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/wxscan/wxscan/store"
)

// v1Scan encodes a scan as schema version 2 wrote it (scan format 1).
func v1Scan(s store.Scan) []byte {
	b := []byte{1}
	for _, str := range []string{s.OpenID, s.EmployeeNo, s.CodeType, s.Code, s.Location, s.EventID} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendVarint(b, int64(s.Qty))
	return binary.AppendVarint(b, s.ScannedAt.UnixNano())
}

// A version 2 file (one open stocktake in meta, format 1 scans, counts per
// openid) is migrated to 4: the open stocktake stays open, old scans decode
// with sku = code, and the aggregates are rebuilt from them.
func TestOpen_MigratesScansFromVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	err = bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"meta", "staff", "bindings", "bindings_by_employee", "oauth_states", "oauth_codes",
			"bind_sessions", "bind_attempts", "stocktakes", "scans", "scan_counts", "scan_seconds", "locations",
			"processed", "processed_at", "tokens", "outbox"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte("meta"))
		if err := meta.Put([]byte("schema_version"), []byte("2")); err != nil {
			return err
		}
		if err := meta.Put([]byte("open_stocktake"), []byte("ST0002")); err != nil {
			return err
		}
		sts := tx.Bucket([]byte("stocktakes"))
		for i, st := range []store.Stocktake{
			{ID: "ST0001", Name: "old", OpenedAt: t0, ClosedAt: t0.Add(time.Second)},
			{ID: "ST0002", Name: "march", OpenedAt: t0},
		} {
			v, _ := json.Marshal(st)
			if err := sts.Put([]byte(st.ID), v); err != nil {
				return err
			}
			if err := sts.SetSequence(uint64(i + 1)); err != nil {
				return err
			}
		}
		for _, id := range []string{"ST0001", "ST0002"} {
			if _, err := tx.Bucket([]byte("scans")).CreateBucket([]byte(id)); err != nil {
				return err
			}
			if _, err := tx.Bucket([]byte("scan_counts")).CreateBucket([]byte(id)); err != nil {
				return err
			}
		}
		sb := tx.Bucket([]byte("scans")).Bucket([]byte("ST0002"))
		for _, s := range []store.Scan{
			{OpenID: "o1", EmployeeNo: "E1", CodeType: "EAN_13", Code: "C1", Location: "A-01", Qty: 1, ScannedAt: at, EventID: "e1"},
			{OpenID: "o1", EmployeeNo: "E1", CodeType: "EAN_13", Code: "C2", Location: "A-01", Qty: 1, ScannedAt: at.Add(time.Second), EventID: "e2"},
			{OpenID: "o2", EmployeeNo: "E2", CodeType: "EAN_13", Code: "C1", Location: "B-01", Qty: 1, ScannedAt: at.Add(2 * time.Second), EventID: "e3"},
		} {
			seq, _ := sb.NextSequence()
			if err := sb.Put(binary.BigEndian.AppendUint64(nil, seq), v1Scan(s)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	db := MustOpenPath(t, path, store.Options{NoSync: true})
	if v, err := db.SchemaVersion(); err != nil || v != 6 {
		t.Fatalf("schema version=%d,%v, want 6", v, err)
	}
	open, err := db.OpenStocktakesNow()
	if err != nil || len(open) != 1 || open[0].ID != "ST0002" || open[0].Scans != 3 {
		t.Fatalf("open=%+v,%v, want ST0002 with 3 scans", open, err)
	}
	scans, err := db.Scans("ST0002")
	if err != nil || len(scans) != 3 {
		t.Fatalf("scans=%+v,%v", scans, err)
	}
	if s := scans[1]; s.Code != "C2" || s.SKU != "C2" || s.Name != "" || s.Qty != 1 || !s.ScannedAt.Equal(at.Add(time.Second)) || s.Ref() != "ST0002-2" {
		t.Fatalf("decoded old scan=%+v", s)
	}
	p, err := db.Progress("ST0002", 5)
	if err != nil {
		t.Fatal(err)
	}
	if p.Scans != 3 || p.Codes != 2 || p.Locations != 2 || p.People != 2 {
		t.Fatalf("rebuilt progress=%+v", p)
	}
	// Old scans can be changed and new ones recorded; counts go on from the old.
	now := at.Add(2 * time.Minute)
	err = db.Update(func(tx *store.Tx) error {
		latest, err := tx.LatestScan("o1", now, true)
		if err != nil {
			return err
		}
		if latest.Ref() != "ST0002-2" {
			t.Fatalf("latest=%s, want ST0002-2", latest.Ref())
		}
		if _, err := tx.SetScanQty("o1", latest.Ref(), 4, now); err != nil {
			return err
		}
		r, err := tx.RecordScan(store.Scan{StocktakeID: "ST0002", OpenID: "o1", Code: "C3", Qty: 1, ScannedAt: now, EventID: "e4"})
		if err != nil {
			return err
		}
		if got, want := r.Count, 6; got != want {
			t.Fatalf("count=%d, want %d", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := db.OpenStocktake("april", t0); err == nil {
		t.Fatalf("opened %+v beside the migrated open one", st)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}
