package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

type expiring struct {
	Expires time.Time `json:"expires"`
}

// OAuthUse is one use of a signed OAuth state: the code WeChat brought back
// with it and the bind session it opened. It is kept until the state
// expires, so that a second redirect with the same code and state gets the
// same session and anything else with that state or code is refused.
type OAuthUse struct {
	State   string    `json:"-"`
	Code    string    `json:"code"`
	Session string    `json:"session"`
	Next    string    `json:"next,omitempty"`
	Expires time.Time `json:"expires"`
}

type usedCode struct {
	State   string    `json:"state"`
	Expires time.Time `json:"expires"`
}

// OAuthUseByState returns the use of state. An unused state, and one whose
// use has expired, return an error wrapping ErrNotFound.
func (db *DB) OAuthUseByState(state string, now time.Time) (OAuthUse, error) {
	var u OAuthUse
	err := db.View(func(tx *Tx) error {
		found, err := getJSON(tx.tx.Bucket(bucketUsedStates), state, &u)
		if err != nil {
			return fmt.Errorf("store: oauth use of state: %w", err)
		}
		if !found || state == "" || expired(u.Expires, now) {
			return fmt.Errorf("store: oauth use of state: %w", ErrNotFound)
		}
		u.State = state
		return nil
	})
	if err != nil {
		return OAuthUse{}, err
	}
	return u, nil
}

// OAuthCodeState returns the state code was used with. An unused code, and
// one whose use has expired, return an error wrapping ErrNotFound.
func (db *DB) OAuthCodeState(code string, now time.Time) (state string, err error) {
	err = db.View(func(tx *Tx) error {
		var rec usedCode
		found, err := getJSON(tx.tx.Bucket(bucketUsedCodes), code, &rec)
		if err != nil {
			return fmt.Errorf("store: oauth code state: %w", err)
		}
		if !found || code == "" || expired(rec.Expires, now) {
			return fmt.Errorf("store: oauth code state: %w", ErrNotFound)
		}
		state = rec.State
		return nil
	})
	return state, err
}

// RecordOAuthUse stores u (until u.Expires) and the session it opened, in
// one transaction. If u.State or u.Code was already used (and that use has
// not expired at now), nothing is stored and the error wraps ErrConflict;
// empty fields are ErrInvalid.
func (db *DB) RecordOAuthUse(u OAuthUse, s Session, now time.Time) error {
	if u.State == "" || u.Code == "" || u.Session == "" || u.Session != s.Token || s.OpenID == "" {
		return fmt.Errorf("store: record oauth use: empty state, code or session: %w", ErrInvalid)
	}
	u.Expires, s.Expires = u.Expires.UTC(), s.Expires.UTC()
	return db.Update(func(tx *Tx) error {
		states, codes := tx.tx.Bucket(bucketUsedStates), tx.tx.Bucket(bucketUsedCodes)
		var prev expiring
		if found, err := getJSON(states, u.State, &prev); err != nil {
			return fmt.Errorf("store: record oauth use: %w", err)
		} else if found && !expired(prev.Expires, now) {
			return fmt.Errorf("store: record oauth use: state used before: %w", ErrConflict)
		}
		if found, err := getJSON(codes, u.Code, &prev); err != nil {
			return fmt.Errorf("store: record oauth use: %w", err)
		} else if found && !expired(prev.Expires, now) {
			return fmt.Errorf("store: record oauth use: code used before: %w", ErrConflict)
		}
		if err := putJSON(states, u.State, u); err != nil {
			return fmt.Errorf("store: record oauth use: %w", err)
		}
		if err := putJSON(codes, u.Code, usedCode{State: u.State, Expires: u.Expires}); err != nil {
			return fmt.Errorf("store: record oauth use: %w", err)
		}
		if err := putJSON(tx.tx.Bucket(bucketSessions), s.Token, s); err != nil {
			return fmt.Errorf("store: record oauth use: %w", err)
		}
		return nil
	})
}

// Session is a bind session: an opaque token, carried in the bind form's
// hidden field, standing for the openid that passed OAuth.
type Session struct {
	Token   string    `json:"token"`
	OpenID  string    `json:"openid"`
	Expires time.Time `json:"expires"`
	// UnionID is set when WeChat returned one with the openid.
	UnionID string `json:"unionid,omitempty"`
}

// PutSession stores (or replaces) a bind session.
func (db *DB) PutSession(s Session) error {
	if s.Token == "" || s.OpenID == "" {
		return fmt.Errorf("store: put session: empty token or openid: %w", ErrInvalid)
	}
	s.Expires = s.Expires.UTC()
	return db.Update(func(tx *Tx) error {
		if err := putJSON(tx.tx.Bucket(bucketSessions), s.Token, s); err != nil {
			return fmt.Errorf("store: put session: %w", err)
		}
		return nil
	})
}

// Session returns the bind session for token: an error wrapping ErrNotFound
// if unknown, ErrExpired if expired. Reading does not consume it.
func (db *DB) Session(token string, now time.Time) (Session, error) {
	var s Session
	err := db.View(func(tx *Tx) error {
		found, err := getJSON(tx.tx.Bucket(bucketSessions), token, &s)
		if err != nil {
			return fmt.Errorf("store: session: %w", err)
		}
		if !found || token == "" {
			return fmt.Errorf("store: session: %w", ErrNotFound)
		}
		if expired(s.Expires, now) {
			return fmt.Errorf("store: session: expired at %s: %w", s.Expires.Format(time.RFC3339), ErrExpired)
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return s, nil
}

// DeleteSession deletes a bind session. Deleting an unknown token is not an error.
func (db *DB) DeleteSession(token string) error {
	if token == "" {
		return nil
	}
	return db.Update(func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketSessions).Delete([]byte(token)); err != nil {
			return fmt.Errorf("store: delete session: %w", err)
		}
		return nil
	})
}

// PruneExpired deletes, in one transaction, the records that no longer
// change any answer at now: expired OAuth uses (state and code), expired
// bind sessions, and bind counters (per employee and per openid) whose lock
// has ended or whose failures are forgotten. It returns how many records it
// deleted; when there is nothing to delete it writes nothing. Safe to run at
// any time, concurrently with everything else.
func (db *DB) PruneExpired(now time.Time) (int, error) {
	var n int
	err := db.Update(func(tx *Tx) error {
		n = 0
		for _, name := range [][]byte{bucketUsedStates, bucketUsedCodes, bucketSessions, bucketBindAttempts, bucketOpenIDAttempts} {
			b := tx.tx.Bucket(name)
			counters := string(name) == string(bucketBindAttempts) || string(name) == string(bucketOpenIDAttempts)
			var stale [][]byte
			err := b.ForEach(func(k, v []byte) error {
				var drop bool
				if counters {
					var c BindCounter
					if err := json.Unmarshal(v, &c); err != nil {
						return fmt.Errorf("decode %s/%q: %w", name, k, err)
					}
					drop = c.current(now) == (BindCounter{})
				} else {
					var rec expiring
					if err := json.Unmarshal(v, &rec); err != nil {
						return fmt.Errorf("decode %s/%q: %w", name, k, err)
					}
					drop = expired(rec.Expires, now)
				}
				if drop {
					stale = append(stale, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("store: prune expired: %w", err)
			}
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return fmt.Errorf("store: prune expired: %s/%q: %w", name, k, err)
				}
			}
			n += len(stale)
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

// errNothingToWrite rolls back an Update that found nothing to change, so
// that it costs no commit.
var errNothingToWrite = errors.New("nothing to write")
