package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

// TestBackupWhileRecording takes a backup while goroutines record scans, each
// in its own transaction, and restores it: the copy passes Check, holds every
// scan committed before the backup began, its counts agree with its scans,
// and it takes new scans.
func TestBackupWhileRecording(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("backup", t0)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 4
	var (
		mu        sync.Mutex
		committed []string // event ids, in commit order
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		errs      = make(chan error, writers)
	)
	for g := range writers {
		wg.Go(func() {
			openid := fmt.Sprintf("o%d", g)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := scan(st.ID, openid, fmt.Sprintf("690%04d", i), t0)
				s.EventID = fmt.Sprintf("%s-%d", openid, i)
				err := db.Update(func(tx *store.Tx) error {
					_, err := tx.RecordScan(s)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				committed = append(committed, s.EventID)
				mu.Unlock()
			}
		})
	}
	waitFor := func(n int) []string {
		for {
			mu.Lock()
			got := len(committed)
			mu.Unlock()
			if got >= n {
				break
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(time.Millisecond):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), committed...)
	}
	before := waitFor(500)

	path := filepath.Join(t.TempDir(), store.FileName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Backup(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	atEnd := len(committed)
	mu.Unlock()
	after := waitFor(atEnd + 50) // the writers go on after the copy
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if got, want := fi.Size(), n; got != want {
		t.Fatalf("file size=%d, want %d", got, want)
	}

	restored := MustOpenPath(t, path, store.Options{NoSync: true})
	if err := restored.Check(); err != nil {
		t.Fatal(err)
	}
	scans, err := restored.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	perOpenID := map[string]int{}
	for _, s := range scans {
		got[s.EventID] = true
		perOpenID[s.OpenID]++
	}
	for _, id := range before {
		if !got[id] {
			t.Fatalf("scan %s, committed before the backup, is not in it (%d of %d there)", id, len(scans), len(before))
		}
	}
	if len(scans) >= len(after) {
		t.Fatalf("backup holds %d scans, want fewer than the %d committed by the end", len(scans), len(after))
	}
	// One snapshot: the per-person counters agree with the scans.
	err = restored.View(func(tx *store.Tx) error {
		for g := range writers {
			openid := fmt.Sprintf("o%d", g)
			if got, want := tx.ScanCount(st.ID, openid), perOpenID[openid]; got != want {
				return fmt.Errorf("count of %s=%d, scans %d", openid, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The restored file is a working database: the stocktake is still open.
	record(t, restored, scan(st.ID, "oNew", "6901234567892", t0))
	if err := restored.Check(); err != nil {
		t.Fatal(err)
	}
}

// failingWriter fails after limit bytes.
type failingWriter struct {
	n, limit int
}

var errWriterFull = errors.New("writer full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		k := w.limit - w.n
		w.n = w.limit
		return k, errWriterFull
	}
	w.n += len(p)
	return len(p), nil
}

func TestBackupWriterFails(t *testing.T) {
	db := MustOpen(t)
	w := &failingWriter{limit: 10000}
	n, err := db.Backup(w)
	if !errors.Is(err, errWriterFull) {
		t.Fatalf("err=%v, want %v", err, errWriterFull)
	}
	if got, want := n, int64(w.limit); got != want {
		t.Fatalf("n=%d, want %d", got, want)
	}
	// The database is unharmed and writable.
	if _, err := db.OpenStocktake("after", t0); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}
