package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestOAuthUse(t *testing.T) {
	db := MustOpen(t)
	exp := t0.Add(10 * time.Minute)
	u := store.OAuthUse{State: "st1", Code: "c1", Session: "tok1", Next: "scan", Expires: exp}
	sess := store.Session{Token: "tok1", OpenID: "o1", Expires: t0.Add(30 * time.Minute)}
	if _, err := db.OAuthUseByState("st1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unused state err=%v, want ErrNotFound", err)
	}
	if err := db.RecordOAuthUse(u, sess, t0); err != nil {
		t.Fatal(err)
	}
	got, err := db.OAuthUseByState("st1", t0.Add(9*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := u; got != want {
		t.Fatalf("use=%+v, want %+v", got, want)
	}
	if st, err := db.OAuthCodeState("c1", t0); err != nil || st != "st1" {
		t.Fatalf("code state=%q, %v; want st1", st, err)
	}
	if s, err := db.Session("tok1", t0); err != nil || s.OpenID != "o1" {
		t.Fatalf("session=%+v, %v", s, err)
	}
	for _, tt := range []struct {
		name string
		u    store.OAuthUse
		want error
	}{
		{"state again with another code", store.OAuthUse{State: "st1", Code: "c2", Session: "tok2", Expires: exp}, store.ErrConflict},
		{"code again with another state", store.OAuthUse{State: "st2", Code: "c1", Session: "tok2", Expires: exp}, store.ErrConflict},
		{"empty state", store.OAuthUse{Code: "c3", Session: "tok2", Expires: exp}, store.ErrInvalid},
		{"empty code", store.OAuthUse{State: "st3", Session: "tok2", Expires: exp}, store.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := db.RecordOAuthUse(tt.u, store.Session{Token: "tok2", OpenID: "o2", Expires: exp}, t0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			if _, err := db.Session("tok2", t0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("session stored by a refused use: %v", err)
			}
		})
	}
	if got, err := db.OAuthUseByState("st1", t0); err != nil || got.Code != "c1" {
		t.Fatalf("use after refusals=%+v, %v; want code c1 kept", got, err)
	}
	for _, tt := range []struct {
		name, state string
		now         time.Time
	}{
		{"expired", "st1", exp},
		{"unknown", "nope", t0},
		{"empty", "", t0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.OAuthUseByState(tt.state, tt.now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err=%v, want ErrNotFound", err)
			}
		})
	}
	if _, err := db.OAuthCodeState("c1", exp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired code err=%v, want ErrNotFound", err)
	}
	// Once expired, the state and the code may be recorded again (a signed
	// state past its expiry is refused before it gets here).
	if err := db.RecordOAuthUse(store.OAuthUse{State: "st1", Code: "c1", Session: "tok3", Expires: exp.Add(time.Hour)},
		store.Session{Token: "tok3", OpenID: "o1", Expires: exp.Add(time.Hour)}, exp); err != nil {
		t.Fatalf("reuse after expiry: %v", err)
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

func TestPruneExpired(t *testing.T) {
	db := MustOpen(t)
	if _, _, err := db.ImportStaff([]store.Staff{{EmployeeNo: "locked", BindCode: "111111"}, {EmployeeNo: "counting", BindCode: "111111"}}); err != nil {
		t.Fatal(err)
	}
	soon, later := t0.Add(time.Minute), t0.Add(time.Hour)
	for _, s := range []string{"soon", "later"} {
		exp := soon
		if s == "later" {
			exp = later
		}
		u := store.OAuthUse{State: "s-" + s, Code: "c-" + s, Session: "u-" + s, Expires: exp}
		if err := db.RecordOAuthUse(u, store.Session{Token: "u-" + s, OpenID: "o1", Expires: exp}, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.PutSession(store.Session{Token: "t-" + s, OpenID: "o1", Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Update(func(tx *store.Tx) error {
		for range store.MaxBindFailures { // lock ends t0+15m
			if _, err := tx.CountEmployeeBindFailure("locked", t0); err != nil {
				return err
			}
		}
		for range store.MaxOpenIDBindFailures { // lock ends t0+1h
			if _, err := tx.CountOpenIDBindFailure("oLocked", t0); err != nil {
				return err
			}
		}
		if _, err := tx.CountEmployeeBindFailure("counting", t0.Add(10*time.Minute)); err != nil {
			return err
		}
		_, err := tx.CountOpenIDBindFailure("oOld", t0.Add(-store.BindFailureMemory)) // forgotten at t0
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	now := t0.Add(30 * time.Minute)
	n, err := db.PruneExpired(now)
	if err != nil {
		t.Fatal(err)
	}
	// state use, code use, two sessions, employee lock, forgotten openid count
	if got, want := n, 6; got != want {
		t.Fatalf("pruned=%d, want %d", got, want)
	}
	if n, err := db.PruneExpired(now); err != nil || n != 0 {
		t.Fatalf("second prune=%d, %v; want 0", n, err)
	}
	counts, err := db.KeyCounts()
	if err != nil {
		t.Fatal(err)
	}
	for bucket, want := range map[string]int{
		"oauth_used_states": 1, "oauth_used_codes": 1, "bind_sessions": 2,
		"bind_attempts": 1, "bind_attempts_openid": 1,
	} {
		if got := counts[bucket]; got != want {
			t.Fatalf("%s keeps %d records, want %d", bucket, got, want)
		}
	}
	if _, err := db.OAuthUseByState("s-later", now); err != nil {
		t.Fatalf("kept state use: %v", err)
	}
	if _, err := db.OAuthCodeState("c-later", now); err != nil {
		t.Fatalf("kept code use: %v", err)
	}
	if _, err := db.Session("t-later", now); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	if _, err := db.Session("t-soon", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned session err=%v, want ErrNotFound", err)
	}
	err = db.View(func(tx *store.Tx) error {
		if c, err := tx.EmployeeBindCounter("counting", now); err != nil || c.Failures != 1 {
			t.Errorf("kept employee counter=%+v, %v; want 1 failure", c, err)
		}
		if c, err := tx.OpenIDBindCounter("oLocked", now); err != nil || !c.Locked(now) {
			t.Errorf("kept openid lock=%+v, %v; want locked", c, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
