package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func processed(tb testing.TB, db *store.DB, id string) bool {
	tb.Helper()
	var done bool
	err := db.View(func(tx *store.Tx) error {
		var err error
		done, err = tx.Processed(id)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return done
}

func TestProcessed(t *testing.T) {
	db := MustOpen(t)
	if processed(t, db, "ev1") {
		t.Fatal("ev1 processed before marking")
	}
	for i := range 2 { // marking twice is harmless
		err := db.Update(func(tx *store.Tx) error { return tx.MarkProcessed("ev1", t0.Add(time.Duration(i)*time.Hour)) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if !processed(t, db, "ev1") {
		t.Fatal("ev1 not processed after marking")
	}
	err := db.Update(func(tx *store.Tx) error { return tx.MarkProcessed("", t0) })
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("MarkProcessed(\"\") err=%v, want ErrInvalid", err)
	}
}

func TestPruneProcessed(t *testing.T) {
	db := MustOpen(t)
	err := db.Update(func(tx *store.Tx) error {
		for i, id := range []string{"a", "b", "c", "d"} {
			if err := tx.MarkProcessed(id, t0.Add(time.Duration(i)*time.Hour)); err != nil {
				return err
			}
			// a reply left behind (a crash between delivery and removal)
			if err := tx.PutOutbox(id, []byte(`{}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		before time.Time
		want   int
		left   []string
	}{
		{"nothing older", t0, 0, []string{"a", "b", "c", "d"}},
		{"two older", t0.Add(2 * time.Hour), 2, []string{"c", "d"}},
		{"again", t0.Add(2 * time.Hour), 0, []string{"c", "d"}},
		{"all", t0.Add(24 * time.Hour), 2, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := db.PruneProcessed(tt.before)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := n, tt.want; got != want {
				t.Fatalf("pruned=%d, want %d", got, want)
			}
			var left []string
			for _, id := range []string{"a", "b", "c", "d"} {
				if processed(t, db, id) {
					left = append(left, id)
				}
			}
			if got, want := len(left), len(tt.left); got != want {
				t.Fatalf("left=%v, want %v", left, tt.left)
			}
			if got, err := db.OutboxLen(); err != nil || got != len(tt.left) {
				t.Fatalf("outbox=%d, %v, want %d: the pruned ids' replies go with them", got, err, len(tt.left))
			}
		})
	}
}
