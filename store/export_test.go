package store

import "fmt"

// PutSession stores (or replaces) a bind session, for tests: the service
// opens sessions only with RecordOAuthUse.
func (db *DB) PutSession(s Session) error {
	if s.Token == "" || s.OpenID == "" {
		return fmt.Errorf("store: put session: empty token or openid: %w", ErrInvalid)
	}
	s.Expires = s.Expires.UTC()
	return db.Update(func(tx *Tx) error {
		return putJSON(tx.tx.Bucket(bucketSessions), s.Token, s)
	})
}
