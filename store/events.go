package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// EventProcessed reports whether the WeChat event eventID, created at
// created (its CreateTime, part of the event and the same in every copy of
// it), was marked with MarkEventProcessed, or with MarkProcessed before
// schema 5. With MarkEventProcessed in the same Update it makes a handler
// idempotent: a redelivered event, or a second stored copy of it, finds its
// mark and records nothing new.
func (tx *Tx) EventProcessed(eventID string, created time.Time) (bool, error) {
	if k, ok := eventKey(eventID, created); ok && tx.tx.Bucket(bucketProcessedEvents).Get(k) != nil {
		return true, nil
	}
	return tx.Processed(eventID)
}

// MarkEventProcessed marks the WeChat event eventID, created at created, as
// processed at at. Events come in about the order they were created, so
// their marks are keyed by that time and append to their bucket; pruning
// walks its front. An event processed more than an hour away from its
// creation time (replayed from the dead letters days later, a clock that is
// off, no creation time) is marked by id instead (MarkProcessed), where it
// is pruned by when it was processed: its mark must outlive the stream
// message that carries it.
func (tx *Tx) MarkEventProcessed(eventID string, created, at time.Time) error {
	if eventID == "" {
		return fmt.Errorf("store: mark processed: empty event id: %w", ErrInvalid)
	}
	k, ok := eventKey(eventID, created)
	if !ok || at.Sub(created).Abs() > receiptMargin {
		return tx.MarkProcessed(eventID, at)
	}
	b := tx.tx.Bucket(bucketProcessedEvents)
	b.FillPercent = 0.9 // mostly appended
	if b.Get(k) != nil {
		return nil
	}
	if err := b.Put(k, u64(uint64(max(at.UnixNano(), 0)))); err != nil {
		return fmt.Errorf("store: mark processed %s: %w", eventID, err)
	}
	return nil
}

// eventKey is eventID's key in processed_events: the second it was
// created, then the id. ok is false without a creation time.
func eventKey(eventID string, created time.Time) (k []byte, ok bool) {
	sec := created.Unix()
	if created.IsZero() || sec <= 0 {
		return nil, false
	}
	return append(u64(uint64(sec)), eventID...), true
}

// Processed reports whether eventID was marked processed. With MarkProcessed
// in the same Update it makes a handler idempotent: a redelivered event
// finds its id and records nothing new. WeChat events use EventProcessed.
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

// receiptMargin bounds how far an event's creation time may be from when it
// is processed for its mark to be keyed by that time, and is how much
// longer such a mark is kept than PruneProcessed's bound: an event is
// stored in the stream a little after it was created, so its message
// outlives its creation time by that much.
const receiptMargin = time.Hour

// PruneProcessed forgets the event ids marked processed before before (for
// WeChat events marked by creation time: created more than an hour before
// before), with any reply of theirs left in the outbox, and returns
// how many; when there are none it writes nothing. Prune only ids older than
// the stream can redeliver (its max age), or a redelivered event would be
// processed twice.
func (db *DB) PruneProcessed(before time.Time) (int, error) {
	var n int
	err := db.Update(func(tx *Tx) error {
		n = 0
		out := tx.tx.Bucket(bucketOutbox)
		// A reply left in the outbox (a crash between its delivery and its
		// removal) can no longer be asked for once the stream cannot bring
		// its event back.
		forget := func(b *bbolt.Bucket, key []byte, id []byte) error {
			if err := b.Delete(key); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
			if err := out.Delete(id); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
			n++
			return nil
		}
		// Marks by id, with their age index.
		idx, byID := tx.tx.Bucket(bucketProcessedByAge), tx.tx.Bucket(bucketProcessed)
		for _, k := range keysBelow(idx, uint64(max(before.UnixNano(), 0))) {
			if err := idx.Delete(k); err != nil {
				return fmt.Errorf("store: prune processed: %w", err)
			}
			if err := forget(byID, k[8:], k[8:]); err != nil {
				return err
			}
		}
		// Marks by creation time.
		events := tx.tx.Bucket(bucketProcessedEvents)
		for _, k := range keysBelow(events, uint64(max(before.Add(-receiptMargin).Unix(), 0))) {
			if err := forget(events, k, k[8:]); err != nil {
				return err
			}
		}
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

// keysBelow returns copies of b's keys whose first 8 bytes, big-endian, are
// below limit: b's keys start with a time.
func keysBelow(b *bbolt.Bucket, limit uint64) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); len(k) >= 8 && getU64(k[:8]) < limit; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}
