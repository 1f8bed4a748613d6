package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestToken_SurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, exp, err := db.LoadToken("access_token")
	if err != nil || v != "" || !exp.IsZero() {
		t.Fatalf("empty LoadToken=%q, %s, %v; want \"\", zero, nil", v, exp, err)
	}
	expires := t0.Add(2 * time.Hour)
	if err := db.SaveToken("access_token", "AT1", expires); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveToken("jsapi_ticket", "JT1", expires.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = MustOpenPath(t, path, store.Options{})
	for _, tt := range []struct {
		name, kind, want string
		exp              time.Time
	}{
		{"access token", "access_token", "AT1", expires},
		{"jsapi ticket", "jsapi_ticket", "JT1", expires.Add(time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, exp, err := db.LoadToken(tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := v, tt.want; got != want {
				t.Fatalf("value=%q, want %q", got, want)
			}
			if got, want := exp, tt.exp; !got.Equal(want) {
				t.Fatalf("expires=%s, want %s", got, want)
			}
		})
	}
}

func TestDropToken(t *testing.T) {
	db := MustOpen(t)
	if err := db.SaveToken("access_token", "AT2", t0); err != nil {
		t.Fatal(err)
	}
	// A refresh replaced AT1 already: dropping AT1 keeps AT2.
	if dropped, err := db.DropToken("access_token", "AT1"); err != nil || dropped {
		t.Fatalf("DropToken(stale)=%v, %v; want false", dropped, err)
	}
	if dropped, err := db.DropToken("access_token", "AT2"); err != nil || !dropped {
		t.Fatalf("DropToken(current)=%v, %v; want true", dropped, err)
	}
	if v, _, err := db.LoadToken("access_token"); err != nil || v != "" {
		t.Fatalf("LoadToken after drop=%q, %v", v, err)
	}
	if err := db.SaveToken("", "x", t0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("SaveToken(\"\") err=%v, want ErrInvalid", err)
	}
}
