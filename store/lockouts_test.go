package store_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

// MustStaffDB is a database with employees E1 and E2 in the directory.
func MustStaffDB(tb testing.TB) *store.DB {
	tb.Helper()
	db := MustOpen(tb)
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "E1", BindCode: "111111"}, {EmployeeNo: "E2", BindCode: "222222"}}); err != nil {
		tb.Fatal(err)
	}
	return db
}

func countEmployee(tb testing.TB, db *store.DB, emp string, now time.Time) (store.BindCounter, error) {
	tb.Helper()
	var c store.BindCounter
	err := db.Update(func(tx *store.Tx) error {
		var err error
		c, err = tx.CountEmployeeBindFailure(emp, now)
		return err
	})
	return c, err
}

func countOpenID(tb testing.TB, db *store.DB, openid string, now time.Time) store.BindCounter {
	tb.Helper()
	var c store.BindCounter
	err := db.Update(func(tx *store.Tx) error {
		var err error
		c, err = tx.CountOpenIDBindFailure(openid, now)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func employeeCounter(tb testing.TB, db *store.DB, emp string, now time.Time) store.BindCounter {
	tb.Helper()
	var c store.BindCounter
	if err := db.View(func(tx *store.Tx) error {
		var err error
		c, err = tx.EmployeeBindCounter(emp, now)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestEmployeeBindCounter(t *testing.T) {
	db := MustStaffDB(t)
	now := t0
	for i := 1; i < store.MaxBindFailures; i++ {
		c, err := countEmployee(t, db, "E1", now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Failures, i; got != want {
			t.Fatalf("failures=%d, want %d", got, want)
		}
		if c.Locked(now) || !c.LockedUntil.IsZero() {
			t.Fatalf("locked after %d failures: %+v", i, c)
		}
		now = now.Add(time.Minute)
	}
	c, err := countEmployee(t, db, "E1", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.LockedUntil, now.Add(15*time.Minute); c.Failures != 5 || !got.Equal(want) {
		t.Fatalf("5th failure=%+v, want locked until %s", c, want)
	}
	lockedAt, until := now, c.LockedUntil
	if c := employeeCounter(t, db, "E2", now); c.Locked(now) || c.Failures != 0 {
		t.Fatalf("E2 affected: %+v", c)
	}
	for _, tt := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"at lock", lockedAt, true},
		{"14 minutes later", lockedAt.Add(14 * time.Minute), true},
		{"15 minutes later", lockedAt.Add(15 * time.Minute), false},
		{"much later", lockedAt.Add(time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := employeeCounter(t, db, "E1", tt.now).Locked(tt.now), tt.want; got != want {
				t.Fatalf("locked=%v, want %v", got, want)
			}
		})
	}
	// A failure while locked neither counts nor extends the lock.
	if c, err := countEmployee(t, db, "E1", lockedAt.Add(time.Minute)); err != nil || c.Failures != 5 || !c.LockedUntil.Equal(until) {
		t.Fatalf("failure while locked=%+v, %v; want 5, %s", c, err, until)
	}
	// After the lock the count restarts.
	if c, err := countEmployee(t, db, "E1", lockedAt.Add(16*time.Minute)); err != nil || c.Failures != 1 || !c.LockedUntil.IsZero() {
		t.Fatalf("after the lock=%+v, %v; want 1 failure, unlocked", c, err)
	}
	// A success resets.
	if err := db.Update(func(tx *store.Tx) error { return tx.ResetEmployeeBindFailures("E1") }); err != nil {
		t.Fatal(err)
	}
	if c := employeeCounter(t, db, "E1", lockedAt.Add(16*time.Minute)); c.Failures != 0 {
		t.Fatalf("after reset=%+v, want zero", c)
	}
	// Failures are forgotten after BindFailureMemory.
	for range 4 {
		if _, err := countEmployee(t, db, "E2", t0); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := countEmployee(t, db, "E2", t0.Add(store.BindFailureMemory)); err != nil || c.Failures != 1 {
		t.Fatalf("after BindFailureMemory=%+v, %v; want 1 failure", c, err)
	}
}

// An employee number that is not in the directory gets no record: made-up
// numbers cannot grow the file.
func TestEmployeeBindCounter_UnknownEmployeeWritesNothing(t *testing.T) {
	db := MustStaffDB(t)
	before, err := db.KeyCounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, emp := range []string{"E404", "", string(bytes.Repeat([]byte("9"), 16<<10))} {
		if _, err := countEmployee(t, db, emp, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("count %.10q: err=%v, want ErrNotFound", emp, err)
		}
	}
	after, err := db.KeyCounts()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after["bind_attempts"], before["bind_attempts"]; got != want {
		t.Fatalf("bind_attempts=%d, want %d", got, want)
	}
}

func TestOpenIDBindCounter(t *testing.T) {
	db := MustStaffDB(t)
	for i := 1; i < store.MaxOpenIDBindFailures; i++ {
		if c := countOpenID(t, db, "oM", t0); c.Failures != i || c.Locked(t0) {
			t.Fatalf("failure %d=%+v", i, c)
		}
	}
	c := countOpenID(t, db, "oM", t0)
	if want := t0.Add(time.Hour); c.Failures != 10 || !c.LockedUntil.Equal(want) {
		t.Fatalf("10th failure=%+v, want locked until %s", c, want)
	}
	if c := countOpenID(t, db, "oM", t0.Add(59*time.Minute)); !c.Locked(t0.Add(59*time.Minute)) || c.Failures != 10 {
		t.Fatalf("while locked=%+v", c)
	}
	if c := countOpenID(t, db, "oM", t0.Add(time.Hour)); c.Locked(t0.Add(time.Hour)) || c.Failures != 1 {
		t.Fatalf("after the hour=%+v, want 1 failure, unlocked", c)
	}
	err := db.Update(func(tx *store.Tx) error {
		_, err := tx.CountOpenIDBindFailure("", t0)
		return err
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty openid err=%v, want ErrInvalid", err)
	}
}

// Concurrent failures are all counted: the count and the check are one
// transaction.
func TestBindCounter_Concurrent(t *testing.T) {
	db := MustStaffDB(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { countOpenID(t, db, "oRace", t0) })
	}
	wg.Wait()
	err := db.View(func(tx *store.Tx) error {
		c, err := tx.OpenIDBindCounter("oRace", t0)
		if err == nil && (c.Failures != store.MaxOpenIDBindFailures || !c.Locked(t0)) {
			t.Errorf("counter=%+v, want locked at %d", c, store.MaxOpenIDBindFailures)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBindLockoutsAndUnlock(t *testing.T) {
	db := MustStaffDB(t)
	for range store.MaxBindFailures {
		if _, err := countEmployee(t, db, "E2", t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := countEmployee(t, db, "E1", t0); err != nil {
		t.Fatal(err)
	}
	countOpenID(t, db, "oB", t0)
	countOpenID(t, db, "oA", t0)
	got, err := db.BindLockouts(t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.BindLockoutEntry{
		{EmployeeNo: "E1", BindCounter: store.BindCounter{Failures: 1, LastFailure: t0}},
		{EmployeeNo: "E2", BindCounter: store.BindCounter{Failures: 5, LastFailure: t0, LockedUntil: t0.Add(store.BindLockout)}},
		{OpenID: "oA", BindCounter: store.BindCounter{Failures: 1, LastFailure: t0}},
		{OpenID: "oB", BindCounter: store.BindCounter{Failures: 1, LastFailure: t0}},
	}
	if len(got) != len(want) {
		t.Fatalf("lockouts=%+v, want %+v", got, want)
	}
	for i := range want {
		if !got[i].LastFailure.Equal(want[i].LastFailure) || !got[i].LockedUntil.Equal(want[i].LockedUntil) ||
			got[i].EmployeeNo != want[i].EmployeeNo || got[i].OpenID != want[i].OpenID || got[i].Failures != want[i].Failures {
			t.Fatalf("lockout %d=%+v, want %+v", i, got[i], want[i])
		}
	}
	// Once the lock ends the entry goes.
	if got, err := db.BindLockouts(t0.Add(store.BindFailureMemory)); err != nil || len(got) != 0 {
		t.Fatalf("lockouts after a day=%+v, %v; want none", got, err)
	}

	for range 2 { // idempotent
		if err := db.UnlockEmployee("E2"); err != nil {
			t.Fatal(err)
		}
		if err := db.UnlockOpenID("oA"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UnlockEmployee("E404"); err != nil {
		t.Fatalf("unlock unknown employee: %v", err)
	}
	if c := employeeCounter(t, db, "E2", t0); c.Locked(t0) || c.Failures != 0 {
		t.Fatalf("E2 after unlock=%+v", c)
	}
	got, err = db.BindLockouts(t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].EmployeeNo != "E1" || got[1].OpenID != "oB" {
		t.Fatalf("lockouts after unlock=%+v, want E1 and oB", got)
	}
}

func TestSecret(t *testing.T) {
	path := t.TempDir() + "/" + store.FileName
	db := MustOpenPath(t, path, store.Options{NoSync: true})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen [][]byte
	)
	for range 8 {
		wg.Go(func() {
			k, err := db.Secret("state", 32)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen = append(seen, k)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, k := range seen {
		if len(k) != 32 || !bytes.Equal(k, seen[0]) {
			t.Fatalf("secrets differ or have the wrong size: %x vs %x", k, seen[0])
		}
	}
	other, err := db.Secret("other", 32)
	if err != nil || bytes.Equal(other, seen[0]) {
		t.Fatalf("another name's secret=%x, %v; want a different value", other, err)
	}
	db.Close()
	db = MustOpenPath(t, path, store.Options{NoSync: true})
	k, err := db.Secret("state", 16)
	if err != nil || !bytes.Equal(k, seen[0]) {
		t.Fatalf("after reopen=%x, %v; want the kept %x", k, err, seen[0])
	}
	if _, err := db.Secret("", 32); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty name err=%v, want ErrInvalid", err)
	}
}
