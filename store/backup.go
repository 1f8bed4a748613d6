package store

import (
	"fmt"
	"io"

	"go.etcd.io/bbolt"
)

// SizeSetter is a writer that wants to know how many bytes a backup will
// hold before its first byte (an HTTP answer sets Content-Length from it).
type SizeSetter interface {
	SetSize(n int64)
}

// Backup writes a consistent copy of the whole database file to w, as it
// stands at the start of the call, and returns the number of bytes written.
// It runs inside one read transaction, so writers go on while it copies and
// their commits are not in the copy; a file written from it opens with Open
// (restore: place it as FileName in a data directory). If w implements
// SizeSetter, SetSize is called once with the copy's exact size before the
// first byte is written. Safe for concurrent use.
//
// A slow w holds the read transaction open: a writer that has to grow the
// file's memory map beyond what is mapped waits until the copy ends.
// An error after SetSize means the copy written so far is incomplete.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		if s, ok := w.(SizeSetter); ok {
			s.SetSize(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}
