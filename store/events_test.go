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
	markHourly(t, db, func(tx *store.Tx, id string, at time.Time) error { return tx.MarkProcessed(id, at) }, "a", "b", "c", "d")
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

// WeChat events are marked by the time they were received, so that marks
// append; a mark made by id (before schema 5, or without a received time)
// is still found.
func TestEventProcessed(t *testing.T) {
	db := MustOpen(t)
	received := t0.Add(-time.Minute)
	err := db.Update(func(tx *store.Tx) error {
		if err := tx.MarkEventProcessed("new", received, t0); err != nil {
			return err
		}
		if err := tx.MarkProcessed("legacy", t0); err != nil { // as before schema 5
			return err
		}
		return tx.MarkEventProcessed("untimed", time.Time{}, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		id       string
		received time.Time
		want     bool
	}{
		{"marked", "new", received, true},
		{"another event", "other", received, false},
		{"marked by id before schema 5", "legacy", received, true},
		{"marked without a received time", "untimed", time.Time{}, true},
		{"unknown without a received time", "other", time.Time{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got bool
			err := db.View(func(tx *store.Tx) error {
				var err error
				got, err = tx.EventProcessed(tt.id, tt.received)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("EventProcessed(%q)=%v, want %v", tt.id, got, tt.want)
			}
		})
	}
	// Marking again changes nothing; an empty id is refused.
	err = db.Update(func(tx *store.Tx) error { return tx.MarkEventProcessed("new", received, t0.Add(time.Hour)) })
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error { return tx.MarkEventProcessed("", received, t0) })
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("MarkEventProcessed(\"\") err=%v, want ErrInvalid", err)
	}
}

// Marks by received time are pruned an hour later than marks by id: an
// event is stored a moment after it is received.
func TestPruneProcessedEvents(t *testing.T) {
	db := MustOpen(t)
	markHourly(t, db, func(tx *store.Tx, id string, at time.Time) error { return tx.MarkEventProcessed(id, at, at) }, "a", "b", "c")
	// Bound t0+2h: "a" (received t0) was received more than an hour before
	// it; "b" (t0+1h) and "c" (t0+2h) are within the hour's margin.
	n, err := db.PruneProcessed(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 1; got != want {
		t.Fatalf("pruned=%d, want %d", got, want)
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": true} {
		var got bool
		if err := db.View(func(tx *store.Tx) error {
			var err error
			got, err = tx.EventProcessed(id, t0.Add(time.Duration(id[0]-'a')*time.Hour))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s processed=%v after prune, want %v", id, got, want)
		}
	}
	if got, err := db.OutboxLen(); err != nil || got != 2 {
		t.Fatalf("outbox=%d, %v, want 2: the pruned mark's reply goes with it", got, err)
	}
	if n, err := db.PruneProcessed(t0.Add(2 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("second prune=%d, %v, want 0", n, err)
	}
}

// markHourly marks ids processed with mark, an hour apart from t0, each
// with a reply left in the outbox (a crash between delivery and removal).
func markHourly(tb testing.TB, db *store.DB, mark func(tx *store.Tx, id string, at time.Time) error, ids ...string) {
	tb.Helper()
	err := db.Update(func(tx *store.Tx) error {
		for i, id := range ids {
			if err := mark(tx, id, t0.Add(time.Duration(i)*time.Hour)); err != nil {
				return err
			}
			if err := tx.PutOutbox(id, []byte(`{}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
