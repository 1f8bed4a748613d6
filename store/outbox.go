package store

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// The outbox holds chat replies that an event's processing produced but that
// are not yet delivered. A reply is put in the same Update that records the
// event, and deleted once delivered, so a crash or a WeChat outage between
// the two redelivers the event, which finds it processed and its reply still
// here: the reply is sent, and the scan is not recorded twice.

// PutOutbox keeps payload as eventID's undelivered reply.
func (tx *Tx) PutOutbox(eventID string, payload []byte) error {
	if eventID == "" {
		return fmt.Errorf("store: put outbox: empty event id: %w", ErrInvalid)
	}
	if err := tx.tx.Bucket(bucketOutbox).Put([]byte(eventID), payload); err != nil {
		return fmt.Errorf("store: put outbox %s: %w", eventID, err)
	}
	return nil
}

// Outbox returns eventID's undelivered reply, or nil when there is none.
func (tx *Tx) Outbox(eventID string) ([]byte, error) {
	v := tx.tx.Bucket(bucketOutbox).Get([]byte(eventID))
	if v == nil {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// DeleteOutbox removes the replies of ids (delivered, or given up) inside
// tx. Unknown ids are ignored.
func (tx *Tx) DeleteOutbox(ids ...string) error {
	b := tx.tx.Bucket(bucketOutbox)
	for _, id := range ids {
		if err := b.Delete([]byte(id)); err != nil {
			return fmt.Errorf("store: delete outbox %s: %w", id, err)
		}
	}
	return nil
}

// OutboxLen is how many replies wait for delivery.
func (db *DB) OutboxLen() (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: outbox len: %w", err)
	}
	return n, nil
}
