package store

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// KeyCounts returns, for each top-level bucket, how many keys it holds,
// the keys of its nested buckets included. It reads one consistent snapshot
// and walks every page: for tests and diagnostics (to see what a request
// wrote), not for request paths.
func (db *DB) KeyCounts() (map[string]int, error) {
	out := map[string]int{}
	err := db.View(func(tx *Tx) error {
		return tx.tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: key counts: %w", err)
	}
	return out, nil
}
