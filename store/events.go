package store

import (
	"errors"
	"fmt"
	"time"
)

// Processed reports whether eventID was marked processed. With MarkProcessed
// in the same Update it makes a handler idempotent: a redelivered event
// finds its id and records nothing new.
func (tx *Tx) Processed(eventID string) (bool, error) {
	return tx.tx.Bucket(bucketProcessed).Get([]byte(eventID)) != nil, nil
}

// MarkProcessed records eventID as processed at at. Marking an id again
// keeps the first time.
func (tx *Tx) MarkProcessed(eventID string, at time.Time) error {
	if eventID == "" {
		return fmt.Errorf("store: mark processed: empty event id: %w", ErrInvalid)
	}
	b := tx.tx.Bucket(bucketProcessed)
	if b.Get([]byte(eventID)) != nil {
		return nil
	}
	nanos := u64(uint64(max(at.UnixNano(), 0)))
	if err := b.Put([]byte(eventID), nanos); err != nil {
		return fmt.Errorf("store: mark processed %s: %w", eventID, err)
	}
	idx := tx.tx.Bucket(bucketProcessedByAge)
	idx.FillPercent = 0.9 // mostly appended
	if err := idx.Put(append(nanos, eventID...), nil); err != nil {
		return fmt.Errorf("store: mark processed %s: %w", eventID, err)
	}
	return nil
}

// PruneProcessed forgets the event ids marked processed before before, with
// any reply of theirs left in the outbox, and returns how many; when there
// are none it writes nothing. Prune only ids
// older than the stream can redeliver (its max age), or a redelivered event
// would be processed twice.
func (db *DB) PruneProcessed(before time.Time) (int, error) {
	var n int
	err := db.Update(func(tx *Tx) error {
		n = 0
		idx, b, out := tx.tx.Bucket(bucketProcessedByAge), tx.tx.Bucket(bucketProcessed), tx.tx.Bucket(bucketOutbox)
		limit := uint64(max(before.UnixNano(), 0))
		var stale [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && getU64(k[:8]) < limit; k, _ = c.Next() {
			stale = append(stale, append([]byte(nil), k...))
		}
		for _, k := range stale {
			if err := idx.Delete(k); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
			if err := b.Delete(k[8:]); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
			// A reply left in the outbox (a crash between its delivery and
			// its removal) can no longer be asked for: the stream will not
			// bring its event back.
			if err := out.Delete(k[8:]); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
		}
		n = len(stale)
		if n == 0 {
			return errNothingToWrite
		}
		return nil
	})
	if errors.Is(err, errNothingToWrite) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
