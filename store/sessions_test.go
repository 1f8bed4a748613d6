package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestOAuthState(t *testing.T) {
	db := MustOpen(t)
	exp := t0.Add(10 * time.Minute)
	for _, s := range []string{"fresh", "late", "reused"} {
		if err := db.PutOAuthState(s, exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.TakeOAuthState("reused", t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, state string
		now         time.Time
		want        error
	}{
		{"fresh", "fresh", t0.Add(9 * time.Minute), nil},
		{"used twice", "fresh", t0, store.ErrNotFound},
		{"already used", "reused", t0, store.ErrNotFound},
		{"unknown", "nope", t0, store.ErrNotFound},
		{"empty", "", t0, store.ErrNotFound},
		{"expired", "late", exp, store.ErrExpired},
		{"expired is deleted", "late", t0, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.TakeOAuthState(tt.state, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("TakeOAuthState err=%v, want %v", err, tt.want)
			}
		})
	}
	if err := db.PutOAuthState("", exp); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutOAuthState(\"\") err=%v, want ErrInvalid", err)
	}
}

func TestOAuthCode(t *testing.T) {
	db := MustOpen(t)
	exp := t0.Add(5 * time.Minute)
	if err := db.PutOAuthCode("c1", "o1", exp); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, code string
		now        time.Time
		want       string
		wantErr    error
	}{
		{"first", "c1", t0, "o1", nil},
		{"second redirect", "c1", t0.Add(time.Minute), "o1", nil},
		{"expired", "c1", exp, "", store.ErrNotFound},
		{"unknown", "c2", t0, "", store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			openid, err := db.OAuthCode(tt.code, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
			if got, want := openid, tt.want; got != want {
				t.Fatalf("openid=%q, want %q", got, want)
			}
		})
	}
	if err := db.PutOAuthCode("c3", "", exp); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutOAuthCode with empty openid err=%v, want ErrInvalid", err)
	}
}

func TestSession(t *testing.T) {
	db := MustOpen(t)
	s := store.Session{Token: "tok", OpenID: "o1", Expires: t0.Add(10 * time.Minute)}
	if err := db.PutSession(s); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, token string
		now         time.Time
		want        error
	}{
		{"valid", "tok", t0, nil},
		{"valid twice", "tok", t0.Add(9 * time.Minute), nil},
		{"expired", "tok", t0.Add(10 * time.Minute), store.ErrExpired},
		{"unknown", "nope", t0, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.Session(tt.token, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			if err == nil && got != s {
				t.Fatalf("Session=%+v, want %+v", got, s)
			}
		})
	}
	if err := db.DeleteSession("tok"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSession("tok"); err != nil {
		t.Fatalf("second DeleteSession: %v", err)
	}
	if _, err := db.Session("tok", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete err=%v, want ErrNotFound", err)
	}
	if err := db.PutSession(store.Session{Token: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutSession without openid err=%v, want ErrInvalid", err)
	}
}

func TestBindLockout(t *testing.T) {
	db := MustOpen(t)
	now := t0
	for i := 1; i <= 4; i++ {
		n, until, err := db.RecordBindFailure("E1", now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n, i; got != want {
			t.Fatalf("failures=%d, want %d", got, want)
		}
		if !until.IsZero() {
			t.Fatalf("locked until %s after %d failures", until, i)
		}
		if _, locked, err := db.BindLocked("E1", now); err != nil || locked {
			t.Fatalf("BindLocked after %d failures = %v, %v; want false", i, locked, err)
		}
		now = now.Add(time.Minute)
	}

	n, until, err := db.RecordBindFailure("E1", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 5; got != want {
		t.Fatalf("failures=%d, want %d", got, want)
	}
	if got, want := until, now.Add(15*time.Minute); !got.Equal(want) {
		t.Fatalf("lockedUntil=%s, want %s", got, want)
	}
	lockedAt := now

	// Another employee is not affected.
	if _, locked, err := db.BindLocked("E2", now); err != nil || locked {
		t.Fatalf("BindLocked(E2)=%v, %v; want false", locked, err)
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
			gotUntil, locked, err := db.BindLocked("E1", tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := locked, tt.want; got != want {
				t.Fatalf("locked=%v, want %v", got, want)
			}
			if locked && !gotUntil.Equal(until) {
				t.Fatalf("until=%s, want %s", gotUntil, until)
			}
		})
	}

	// A failure while locked does not extend the lock.
	n, until2, err := db.RecordBindFailure("E1", lockedAt.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || !until2.Equal(until) {
		t.Fatalf("failure while locked = %d, %s; want 5, %s", n, until2, until)
	}

	// After the lock the count restarts.
	n, until2, err = db.RecordBindFailure("E1", lockedAt.Add(16*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !until2.IsZero() {
		t.Fatalf("after lock: %d, %s; want 1, zero", n, until2)
	}

	// A success resets.
	if err := db.ResetBindFailures("E1"); err != nil {
		t.Fatal(err)
	}
	if n, _, err := db.RecordBindFailure("E1", lockedAt.Add(17*time.Minute)); err != nil || n != 1 {
		t.Fatalf("after reset: %d, %v; want 1", n, err)
	}
}

func TestBindLockout_ResetWhileLocked(t *testing.T) {
	db := MustOpen(t)
	for range 5 {
		if _, _, err := db.RecordBindFailure("E1", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ResetBindFailures("E1"); err != nil {
		t.Fatal(err)
	}
	if _, locked, err := db.BindLocked("E1", t0); err != nil || locked {
		t.Fatalf("locked after reset = %v, %v", locked, err)
	}
}

func TestBindFailures_Forgotten(t *testing.T) {
	db := MustOpen(t)
	for range 4 {
		if _, _, err := db.RecordBindFailure("E1", t0); err != nil {
			t.Fatal(err)
		}
	}
	n, _, err := db.RecordBindFailure("E1", t0.Add(store.BindFailureMemory))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 1; got != want {
		t.Fatalf("failures=%d, want %d", got, want)
	}
}

func TestPruneExpired(t *testing.T) {
	db := MustOpen(t)
	soon, later := t0.Add(time.Minute), t0.Add(time.Hour)
	for _, s := range []string{"s-soon", "s-later"} {
		exp := soon
		if s == "s-later" {
			exp = later
		}
		if err := db.PutOAuthState(s, exp); err != nil {
			t.Fatal(err)
		}
		if err := db.PutOAuthCode("c"+s, "o1", exp); err != nil {
			t.Fatal(err)
		}
		if err := db.PutSession(store.Session{Token: "t" + s, OpenID: "o1", Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, _, err := db.RecordBindFailure("locked", t0); err != nil { // lock ends t0+15m
			t.Fatal(err)
		}
	}
	if _, _, err := db.RecordBindFailure("counting", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}

	now := t0.Add(30 * time.Minute)
	n, err := db.PruneExpired(now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 4; got != want { // state, code, session, lock
		t.Fatalf("pruned=%d, want %d", got, want)
	}
	if n, err := db.PruneExpired(now); err != nil || n != 0 {
		t.Fatalf("second prune=%d, %v; want 0", n, err)
	}
	if err := db.TakeOAuthState("s-soon", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned state err=%v, want ErrNotFound", err)
	}
	if err := db.TakeOAuthState("s-later", now); err != nil {
		t.Fatalf("kept state: %v", err)
	}
	if _, err := db.OAuthCode("cs-later", now); err != nil {
		t.Fatalf("kept code: %v", err)
	}
	if _, err := db.Session("ts-later", now); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	if _, err := db.Session("ts-soon", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned session err=%v, want ErrNotFound", err)
	}
	if n, _, err := db.RecordBindFailure("counting", now); err != nil || n != 2 {
		t.Fatalf("kept attempts: %d, %v; want 2", n, err)
	}
}

func TestSessionKeepsUnionID(t *testing.T) {
	db := MustOpen(t)
	now := time.Now()
	if err := db.PutSession(store.Session{Token: "t1", OpenID: "o1", UnionID: "u1", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	s, err := db.Session("t1", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.UnionID, "u1"; got != want {
		t.Fatalf("unionid=%q, want %q", got, want)
	}
}
