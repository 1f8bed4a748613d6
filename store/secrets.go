package store

import (
	"crypto/rand"
	"fmt"
)

// Secret returns the random secret called name, of n bytes, generating it at
// the first call and keeping it in the file (the meta bucket), so that it
// survives restarts and stays the same for everyone who opens this file.
// Later calls return the kept value whatever n is. It is safe for concurrent
// use: two first calls agree on one value. The value is a secret: never log
// it.
func (db *DB) Secret(name string, n int) ([]byte, error) {
	if name == "" || n <= 0 {
		return nil, fmt.Errorf("store: secret: empty name or size: %w", ErrInvalid)
	}
	key := []byte("secret/" + name)
	var out []byte
	err := db.View(func(tx *Tx) error {
		out = append([]byte(nil), tx.tx.Bucket(bucketMeta).Get(key)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: secret %s: %w", name, err)
	}
	if len(out) > 0 {
		return out, nil
	}
	err = db.Update(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketMeta)
		if v := b.Get(key); len(v) > 0 {
			out = append([]byte(nil), v...)
			return nil
		}
		out = make([]byte, n)
		if _, err := rand.Read(out); err != nil {
			return err
		}
		return b.Put(key, out)
	})
	if err != nil {
		return nil, fmt.Errorf("store: secret %s: %w", name, err)
	}
	return out, nil
}
