package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/wxscan/wxscan/store"
)

// MustOpen opens a fresh database in tb's temporary directory, without
// fsync, and closes it when the test ends.
func MustOpen(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenPath(tb, filepath.Join(tb.TempDir(), store.FileName), store.Options{NoSync: true})
}

// MustOpenPath opens the database at path with opts and closes it when the test ends.
func MustOpenPath(tb testing.TB, path string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestOpen_CreatesDirAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sub", store.FileName)
	db := MustOpenPath(t, path, store.Options{NoSync: true})
	if got, want := db.Path(), path; got != want {
		t.Fatalf("Path=%q, want %q", got, want)
	}
	v, err := db.SchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v, 6; got != want {
		t.Fatalf("schema version=%d, want %d", got, want)
	}
}

func TestOpen_ReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	for i := range 3 {
		db, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if i == 0 {
			if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", Name: "Ann", BindCode: "111111"}}); err != nil {
				t.Fatal(err)
			}
		}
		v, err := db.SchemaVersion()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := v, 6; got != want {
			t.Fatalf("open #%d: schema version=%d, want %d", i, got, want)
		}
		s, err := db.Staff("E1")
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if got, want := s.Name, "Ann"; got != want {
			t.Fatalf("open #%d: name=%q, want %q", i, got, want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpen_NewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema_version"), []byte("99"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, store.Options{NoSync: true})
	if err == nil {
		db.Close()
		t.Fatal("opened a file with schema version 99")
	}
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("err=%v, want ErrInvalid", err)
	}
}

func TestOpen_Locked(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	first := MustOpenPath(t, path, store.Options{NoSync: true})

	start := time.Now()
	second, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond, NoSync: true})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("err=%v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err=%q, want the path and %q", err, "locked by another process")
	}
	if elapsed > 2*time.Second {
		t.Fatalf("gave up after %s, want about 200ms", elapsed)
	}

	// The first handle keeps working, and the file opens once it is released.
	if err := first.SaveToken("access_token", "v", t0); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := MustOpenPath(t, path, store.Options{Timeout: 200 * time.Millisecond, NoSync: true})
	if v, _, err := again.LoadToken("access_token"); err != nil || v != "v" {
		t.Fatalf("LoadToken=%q, %v, want %q", v, err, "v")
	}
}

func TestOpen_EmptyPath(t *testing.T) {
	if _, err := store.Open("", store.Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("err=%v, want ErrInvalid", err)
	}
}

func TestUpdate_RollsBackOnError(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = db.Update(func(tx *store.Tx) error {
		if _, err := tx.RecordScan(scan(st.ID, "o1", "C1", t0)); err != nil {
			return err
		}
		if err := tx.MarkProcessed("ev1", t0); err != nil {
			return err
		}
		return boom
	})
	if got, want := err, boom; got != want {
		t.Fatalf("Update=%v, want %v unchanged", got, want)
	}
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(scans), 0; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
	err = db.View(func(tx *store.Tx) error {
		done, err := tx.Processed("ev1")
		if err != nil {
			return err
		}
		if done {
			t.Fatal("ev1 processed after rollback")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestView_WriteFails(t *testing.T) {
	db := MustOpen(t)
	err := db.View(func(tx *store.Tx) error { return tx.SetLocation("o1", "A-01") })
	if err == nil {
		t.Fatal("write in View succeeded")
	}
}

// Close then Close again is harmless.
func TestClose_Twice(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A DB is shared by the consumers, the admin API and the pages at once.
func TestDB_ConcurrentUse(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 4, 50
	errs := make(chan error, 2*writers)
	for w := range writers {
		go func() {
			for i := range perWriter {
				err := db.Update(func(tx *store.Tx) error {
					_, err := tx.RecordScan(scan(st.ID, "o1", "c", t0.Add(time.Duration(w*perWriter+i+1)*time.Second)))
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		go func() {
			for range perWriter {
				if _, err := db.Scans(st.ID); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 * writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	err = db.View(func(tx *store.Tx) error {
		if got, want := tx.ScanCount(st.ID, "o1"), writers*perWriter; got != want {
			t.Fatalf("count=%d, want %d", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file written by schema version 1 (no outbox) is migrated to the current
// version on open, keeping its data.
func TestOpen_MigratesFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db := MustOpenPath(t, path, store.Options{NoSync: true})
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", Name: "Ann", BindCode: "111111"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("outbox")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	db = MustOpenPath(t, path, store.Options{NoSync: true})
	if v, err := db.SchemaVersion(); err != nil || v != 6 {
		t.Fatalf("schema version=%d,%v, want 6", v, err)
	}
	if _, err := db.Staff("E1"); err != nil {
		t.Fatalf("staff lost in migration: %v", err)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutOutbox("e1", []byte("x")) }); err != nil {
		t.Fatalf("outbox after migration: %v", err)
	}
}

// A file written by schema version 2 (unsigned states kept server-side,
// bind counters per employee only) is migrated to 3: the old state and code
// records are dropped, the counters kept, the new buckets usable.
func TestOpen_MigratesFromVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db := MustOpenPath(t, path, store.Options{NoSync: true})
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", Name: "Ann", BindCode: "111111"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"oauth_used_states", "oauth_used_codes", "bind_attempts_openid"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		for name, kv := range map[string][2]string{
			"oauth_states":  {"b0123", `{"expires":"2030-01-01T00:00:00Z"}`},
			"oauth_codes":   {"CODE", `{"openid":"o1","expires":"2030-01-01T00:00:00Z"}`},
			"bind_attempts": {"E1", `{"failures":2,"last_failure":"2030-01-01T00:00:00Z"}`},
		} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	db = MustOpenPath(t, path, store.Options{NoSync: true})
	if v, err := db.SchemaVersion(); err != nil || v != 6 {
		t.Fatalf("schema version=%d,%v, want 6", v, err)
	}
	counts, err := db.KeyCounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"oauth_states", "oauth_codes"} {
		if n, ok := counts[gone]; ok {
			t.Fatalf("bucket %s kept with %d keys, want it dropped", gone, n)
		}
	}
	if got, want := counts["bind_attempts"], 1; got != want {
		t.Fatalf("bind_attempts=%d, want %d (kept)", got, want)
	}
	at := time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	if err := db.Update(func(tx *store.Tx) error {
		_, err := tx.CountOpenIDBindFailure("o1", at)
		return err
	}); err != nil {
		t.Fatalf("openid counter after migration: %v", err)
	}
	u := store.OAuthUse{State: "s", Code: "c", Session: "t", Expires: at.Add(time.Minute)}
	if err := db.RecordOAuthUse(u, store.Session{Token: "t", OpenID: "o1", Expires: at.Add(time.Hour)}, at); err != nil {
		t.Fatalf("oauth use after migration: %v", err)
	}
}

func TestCheck_ConsistentAfterUse(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		err := db.Update(func(tx *store.Tx) error {
			_, err := tx.RecordScan(scan(st.ID, "o1", "C"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Second)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	// Check writes nothing: the data is as before.
	scans, err := db.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(scans), 200; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
}

// A full disk (ENOSPC, as /dev/full answers every write) is reported as
// ErrNoSpace, naming the file.
func TestOpen_DiskFull(t *testing.T) {
	const full = "/dev/full"
	if _, err := os.Stat(full); err != nil {
		t.Skipf("no %s: %v", full, err)
	}
	db, err := store.Open(full, store.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatalf("opened %s", full)
	}
	if errors.Is(err, store.ErrLocked) {
		t.Skipf("another process holds %s", full)
	}
	if !errors.Is(err, store.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err=%v, want ErrNoSpace wrapping ENOSPC", err)
	}
	if !strings.Contains(err.Error(), full) || !strings.Contains(err.Error(), "no space left on the data disk") {
		t.Fatalf("err=%q, want the path and %q", err, "no space left on the data disk")
	}
}
