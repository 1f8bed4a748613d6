package store

import (
	"fmt"
	"io"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database file to w, as it
// stands at the start of the call, and returns the number of bytes written.
// It runs inside one read transaction, so writers go on while it copies and
// their commits are not in the copy; a file written from it opens with Open
// (restore: place it as FileName in a data directory). Safe for concurrent
// use.
//
// A slow w holds the read transaction open: a writer that has to grow the
// file's memory map beyond what is mapped waits until the copy ends, so
// copy to a file, not to a network client. An error means the copy written
// so far is incomplete.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}

// OpenReadTxs is how many read transactions are open now: for diagnostics
// and tests (a backup or export must not hold one while a client is slow).
func (db *DB) OpenReadTxs() int { return db.bolt.Stats().OpenTxN }
