package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
)

// devStaff is the sample staff directory as store rows, for tests that
// prepare a data directory before a process takes it.
var devStaff = func() []store.Staff {
	rows, err := admin.ParseStaff(strings.NewReader(devStaffCSV))
	if err != nil {
		panic(err)
	}
	return rows
}()

// TestDevImportsSampleStaffThroughTheAPI runs `wxscan dev` and checks that
// the sample staff arrived (through the admin API) before the banner.
func TestDevImportsSampleStaffThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, []string{"--addr", "127.0.0.1:0", "--fake-addr", "127.0.0.1:0", "--nats-listen", "off",
			"--data-dir", dir}, &stdout, io.Discard, func(string) string { return "" })
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.text(), "wxscan dev is running") {
		select {
		case err := <-done:
			t.Fatalf("dev stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no banner within 20s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dbPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := db.StaffList()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(list), 3; got != want {
		t.Fatalf("staff=%d, want %d", got, want)
	}
	if st, err := db.Staff("E003"); err != nil || st.Name != "王五" || st.CanScan {
		t.Fatalf("E003=%+v, %v", st, err)
	}
}

func (b *syncBuffer) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
