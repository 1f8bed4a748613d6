package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

// TestAdminBackup downloads a backup while scans are being recorded and
// restores it into another data directory: the copy passes Check and holds
// every scan recorded before the request.
func TestAdminBackup(t *testing.T) {
	e := admintest.MustServer(t, token)
	st, err := e.DB.OpenStocktake("backup", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		committed []string
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		failed    = make(chan error, 3)
	)
	for g := range 3 {
		wg.Go(func() {
			openid := fmt.Sprintf("o%d", g)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d", openid, i)
				err := e.DB.Update(func(tx *store.Tx) error {
					_, err := tx.RecordScan(store.Scan{StocktakeID: st.ID, OpenID: openid, EmployeeNo: "E" + openid,
						CodeType: "EAN_13", Code: "690" + strconv.Itoa(i), Qty: 1, ScannedAt: e.Clock.Now(), EventID: id})
					return err
				})
				if err != nil {
					failed <- err
					return
				}
				mu.Lock()
				committed = append(committed, id)
				mu.Unlock()
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	var before []string
	for len(before) < 300 {
		select {
		case err := <-failed:
			t.Fatal(err)
		case <-time.After(time.Millisecond):
		}
		mu.Lock()
		before = append(before[:0], committed...)
		mu.Unlock()
	}

	req, _ := http.NewRequest("GET", e.URL+"/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, data)
	}
	for name, want := range map[string]string{
		"Content-Type":        "application/octet-stream",
		"Content-Disposition": `attachment; filename="wxscan-20250301T020000Z.db"`,
		"Content-Length":      strconv.Itoa(len(data)),
	} {
		if got := resp.Header.Get(name); got != want {
			t.Fatalf("%s=%q, want %q", name, got, want)
		}
	}

	path := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.Check(); err != nil {
		t.Fatal(err)
	}
	scans, err := restored.Scans(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range scans {
		got[s.EventID] = true
	}
	for _, id := range before {
		if !got[id] {
			t.Fatalf("scan %s, recorded before the backup, is not in it (%d there, %d before)", id, len(scans), len(before))
		}
	}

	t.Run("needs the token", func(t *testing.T) {
		code, body := doAuth(t, e, "GET", "/admin/backup", "", "", "Bearer wrong")
		if got, want := code, http.StatusUnauthorized; got != want {
			t.Fatalf("status=%d, want %d (%s)", got, want, body)
		}
		errorOf(t, body)
	})
}

// A client that stalls mid-download holds no read transaction: the copy is
// taken into a temporary file first, so writers that must grow the file's
// memory map never wait for a slow download. The temporary file goes when
// the answer ends.
func TestAdminBackupSlowClientHoldsNoTransaction(t *testing.T) {
	e := admintest.MustServer(t, token)
	// Some megabytes, more than the socket buffers absorb.
	var items []store.Item
	for i := range 20000 {
		items = append(items, store.Item{Code: fmt.Sprintf("69%011d", i), SKU: fmt.Sprintf("SKU-%06d", i),
			Name: strings.Repeat("货", 40), Unit: "箱"})
	}
	if _, _, err := e.DB.ImportItems(items); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(e.DB.Path())
	req, _ := http.NewRequest("GET", e.URL+"/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // on failure too: the server's handler waits for it
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	size, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if size < 4<<20 {
		t.Fatalf("backup of %d bytes is too small to stall a download", size)
	}
	// The client has read nothing of the body yet.
	time.Sleep(100 * time.Millisecond)
	if got := e.DB.OpenReadTxs(); got != 0 {
		t.Fatalf("open read transactions during a stalled download=%d, want 0", got)
	}
	if err := e.DB.Update(func(tx *store.Tx) error { return tx.SetLocation("o1", "A-01") }); err != nil {
		t.Fatalf("write during a stalled download: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(dir, ".backup-*"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary files left: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
