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

// WeChat events are marked by their creation time, so that marks append;
// an event processed far from its creation time, or without one, is marked
// by id; a mark made by id before schema 5 is still found.
func TestEventProcessed(t *testing.T) {
	db := MustOpen(t)
	now := t0
	marks := []struct {
		id      string
		created time.Time
	}{
		{"new", now.Add(-time.Minute)},             // by creation time
		{"replayed", now.Add(-8 * 24 * time.Hour)}, // from the dead letters, days later: by id
		{"future", now.Add(2 * time.Hour)},         // a clock that is off: by id
		{"untimed", time.Time{}},                   // by id
	}
	err := db.Update(func(tx *store.Tx) error {
		for _, m := range marks {
			if err := tx.MarkEventProcessed(m.id, m.created, now); err != nil {
				return err
			}
		}
		return tx.MarkProcessed("legacy", now) // as before schema 5
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := db.KeyCounts()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counts["processed_events"], 1; got != want {
		t.Fatalf("marks by creation time=%d, want %d", got, want)
	}
	if got, want := counts["processed"], 4; got != want {
		t.Fatalf("marks by id=%d, want %d", got, want)
	}
	for _, tt := range []struct {
		name    string
		id      string
		created time.Time
		want    bool
	}{
		{"marked", "new", marks[0].created, true},
		{"another event", "other", marks[0].created, false},
		{"replayed days later", "replayed", marks[1].created, true},
		{"created in the future", "future", marks[2].created, true},
		{"marked without a creation time", "untimed", time.Time{}, true},
		{"marked by id before schema 5", "legacy", marks[0].created, true},
		{"unknown without a creation time", "other", time.Time{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventProcessed(t, db, tt.id, tt.created); got != tt.want {
				t.Fatalf("EventProcessed(%q)=%v, want %v", tt.id, got, tt.want)
			}
		})
	}
	// A replayed event's mark outlives the stream's retention counted from
	// when it was processed, not from its creation.
	if _, err := db.PruneProcessed(now.Add(-7 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !eventProcessed(t, db, "replayed", marks[1].created) {
		t.Fatal("the replayed event's mark was pruned by its creation time")
	}
	// Marking again changes nothing; an empty id is refused.
	err = db.Update(func(tx *store.Tx) error { return tx.MarkEventProcessed("new", marks[0].created, now.Add(time.Minute)) })
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error { return tx.MarkEventProcessed("", marks[0].created, now) })
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("MarkEventProcessed(\"\") err=%v, want ErrInvalid", err)
	}
}

func eventProcessed(tb testing.TB, db *store.DB, id string, created time.Time) bool {
	tb.Helper()
	var got bool
	if err := db.View(func(tx *store.Tx) error {
		var err error
		got, err = tx.EventProcessed(id, created)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return got
}

// Marks by creation time are pruned an hour later than marks by id: an
// event is stored a little after it was created.
func TestPruneProcessedEvents(t *testing.T) {
	db := MustOpen(t)
	markHourly(t, db, func(tx *store.Tx, id string, at time.Time) error { return tx.MarkEventProcessed(id, at, at) }, "a", "b", "c")
	// Bound t0+2h: "a" (created t0) was created more than an hour before
	// it; "b" (t0+1h) and "c" (t0+2h) are within the hour's margin.
	n, err := db.PruneProcessed(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 1; got != want {
		t.Fatalf("pruned=%d, want %d", got, want)
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": true} {
		if got := eventProcessed(t, db, id, t0.Add(time.Duration(id[0]-'a')*time.Hour)); got != want {
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
