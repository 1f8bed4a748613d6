package store

import (
	"fmt"
	"time"
)

type token struct {
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LoadToken returns the cached WeChat token of kind (e.g. "access_token",
// "jsapi_ticket") and its expiry, or ("", zero time, nil) when none is
// cached. Expired tokens are returned too; the caller decides when to refresh.
func (db *DB) LoadToken(kind string) (value string, expiresAt time.Time, err error) {
	var t token
	err = db.View(func(tx *Tx) error {
		if _, err := getJSON(tx.tx.Bucket(bucketTokens), kind, &t); err != nil {
			return fmt.Errorf("store: load token %s: %w", kind, err)
		}
		return nil
	})
	return t.Value, t.ExpiresAt, err
}

// SaveToken caches a WeChat token of kind, replacing the previous one.
func (db *DB) SaveToken(kind, value string, expiresAt time.Time) error {
	if kind == "" {
		return fmt.Errorf("store: save token: empty kind: %w", ErrInvalid)
	}
	return db.Update(func(tx *Tx) error {
		if err := putJSON(tx.tx.Bucket(bucketTokens), kind, token{Value: value, ExpiresAt: expiresAt.UTC()}); err != nil {
			return fmt.Errorf("store: save token %s: %w", kind, err)
		}
		return nil
	})
}

// DropToken deletes the cached token of kind only if it is still value (a
// concurrent refresh may have replaced it), and reports whether it did.
func (db *DB) DropToken(kind, value string) (bool, error) {
	var dropped bool
	err := db.Update(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketTokens)
		var t token
		found, err := getJSON(b, kind, &t)
		if err != nil {
			return fmt.Errorf("store: drop token %s: %w", kind, err)
		}
		if !found || t.Value != value {
			return nil
		}
		if err := b.Delete([]byte(kind)); err != nil {
			return fmt.Errorf("store: drop token %s: %w", kind, err)
		}
		dropped = true
		return nil
	})
	return dropped, err
}
