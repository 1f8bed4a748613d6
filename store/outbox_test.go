package store_test

import (
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestOutbox(t *testing.T) {
	db := MustOpen(t)
	if err := db.Update(func(tx *store.Tx) error {
		if err := tx.MarkProcessed("e1", time.Now()); err != nil {
			return err
		}
		return tx.PutOutbox("e1", []byte(`{"content":"hi"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.OutboxLen(); err != nil || n != 1 {
		t.Fatalf("OutboxLen=%d,%v, want 1", n, err)
	}
	var got []byte
	db.View(func(tx *store.Tx) error {
		var err error
		got, err = tx.Outbox("e1")
		return err
	})
	if string(got) != `{"content":"hi"}` {
		t.Fatalf("outbox=%q", got)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.DeleteOutbox("e1", "unknown") }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *store.Tx) error {
		got, _ = tx.Outbox("e1")
		return nil
	})
	if got != nil {
		t.Fatalf("outbox after delete=%q, want nil", got)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutOutbox("", nil) }); err == nil {
		t.Fatal("empty id accepted")
	}
}
