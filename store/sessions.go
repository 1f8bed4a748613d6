package store

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Bind lockout: after MaxBindFailures wrong codes for one employee, every
// attempt for that employee is refused for BindLockout. A failure count that
// is not locked is forgotten BindFailureMemory after its last failure.
const (
	MaxBindFailures   = 5
	BindLockout       = 15 * time.Minute
	BindFailureMemory = 24 * time.Hour
)

type expiring struct {
	OpenID  string    `json:"openid,omitempty"`
	Expires time.Time `json:"expires"`
}

// PutOAuthState stores a single-use OAuth state valid until expires.
// Storing the same state again replaces its expiry.
func (db *DB) PutOAuthState(state string, expires time.Time) error {
	if state == "" {
		return fmt.Errorf("store: put oauth state: empty state: %w", ErrInvalid)
	}
	return db.Update(func(tx *Tx) error {
		if err := putJSON(tx.tx.Bucket(bucketOAuthStates), state, expiring{Expires: expires.UTC()}); err != nil {
			return fmt.Errorf("store: put oauth state: %w", err)
		}
		return nil
	})
}

// TakeOAuthState consumes state: it succeeds at most once per stored state.
// It returns an error wrapping ErrNotFound if state is unknown or already
// taken, and ErrExpired if it has expired (it is deleted either way).
func (db *DB) TakeOAuthState(state string, now time.Time) error {
	var expiredErr error
	err := db.Update(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketOAuthStates)
		var rec expiring
		found, err := getJSON(b, state, &rec)
		if err != nil {
			return fmt.Errorf("store: take oauth state: %w", err)
		}
		if !found || state == "" {
			return fmt.Errorf("store: take oauth state: %w", ErrNotFound)
		}
		if err := b.Delete([]byte(state)); err != nil {
			return fmt.Errorf("store: take oauth state: %w", err)
		}
		if expired(rec.Expires, now) {
			// Commit the delete, then report.
			expiredErr = fmt.Errorf("store: take oauth state: expired at %s: %w", rec.Expires.Format(time.RFC3339), ErrExpired)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return expiredErr
}

// PutOAuthCode remembers that the OAuth code was exchanged for openid, so a
// second redirect with the same code gets the same answer until expires.
func (db *DB) PutOAuthCode(code, openid string, expires time.Time) error {
	if code == "" || openid == "" {
		return fmt.Errorf("store: put oauth code: empty code or openid: %w", ErrInvalid)
	}
	return db.Update(func(tx *Tx) error {
		if err := putJSON(tx.tx.Bucket(bucketOAuthCodes), code, expiring{OpenID: openid, Expires: expires.UTC()}); err != nil {
			return fmt.Errorf("store: put oauth code: %w", err)
		}
		return nil
	})
}

// OAuthCode returns the openid a code was exchanged for. Unknown and expired
// codes both return an error wrapping ErrNotFound. Reading does not consume it.
func (db *DB) OAuthCode(code string, now time.Time) (openid string, err error) {
	err = db.View(func(tx *Tx) error {
		var rec expiring
		found, err := getJSON(tx.tx.Bucket(bucketOAuthCodes), code, &rec)
		if err != nil {
			return fmt.Errorf("store: oauth code: %w", err)
		}
		if !found || code == "" || expired(rec.Expires, now) {
			return fmt.Errorf("store: oauth code: %w", ErrNotFound)
		}
		openid = rec.OpenID
		return nil
	})
	return openid, err
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

type bindAttempts struct {
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// current returns the attempts as they stand at now: an expired lock or a
// forgotten failure count restarts from zero.
func (a bindAttempts) current(now time.Time) bindAttempts {
	if !a.LockedUntil.IsZero() && !now.Before(a.LockedUntil) {
		return bindAttempts{}
	}
	if a.LockedUntil.IsZero() && !now.Before(a.LastFailure.Add(BindFailureMemory)) {
		return bindAttempts{}
	}
	return a
}

func (a bindAttempts) locked(now time.Time) bool {
	return !a.LockedUntil.IsZero() && now.Before(a.LockedUntil)
}

func getAttempts(b *bbolt.Bucket, employeeNo string, now time.Time) (bindAttempts, error) {
	var a bindAttempts
	if _, err := getJSON(b, employeeNo, &a); err != nil {
		return bindAttempts{}, err
	}
	return a.current(now), nil
}

// BindLocked reports whether bind attempts for employeeNo are refused at now, and until when.
func (db *DB) BindLocked(employeeNo string, now time.Time) (until time.Time, locked bool, err error) {
	err = db.View(func(tx *Tx) error {
		a, err := getAttempts(tx.tx.Bucket(bucketBindAttempts), employeeNo, now)
		if err != nil {
			return fmt.Errorf("store: bind locked %s: %w", employeeNo, err)
		}
		if a.locked(now) {
			until, locked = a.LockedUntil, true
		}
		return nil
	})
	return until, locked, err
}

// RecordBindFailure counts a wrong bind code for employeeNo and returns the
// failures so far. The MaxBindFailures-th failure locks the employee until
// now+BindLockout; once the lock expires the count restarts. A failure
// recorded while locked changes nothing (the caller should have checked
// BindLocked) and returns the current lock.
func (db *DB) RecordBindFailure(employeeNo string, now time.Time) (failures int, lockedUntil time.Time, err error) {
	if employeeNo == "" {
		return 0, time.Time{}, fmt.Errorf("store: record bind failure: empty employee_no: %w", ErrInvalid)
	}
	err = db.Update(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketBindAttempts)
		a, err := getAttempts(b, employeeNo, now)
		if err != nil {
			return fmt.Errorf("store: record bind failure %s: %w", employeeNo, err)
		}
		if !a.locked(now) {
			a.Failures++
			a.LastFailure = now.UTC()
			if a.Failures >= MaxBindFailures {
				a.LockedUntil = now.Add(BindLockout).UTC()
			}
			if err := putJSON(b, employeeNo, a); err != nil {
				return fmt.Errorf("store: record bind failure %s: %w", employeeNo, err)
			}
		}
		failures, lockedUntil = a.Failures, a.LockedUntil
		return nil
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return failures, lockedUntil, nil
}

// ResetBindFailures forgets employeeNo's failures and lock (after a correct code). Idempotent.
func (db *DB) ResetBindFailures(employeeNo string) error {
	if employeeNo == "" {
		return nil
	}
	return db.Update(func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketBindAttempts).Delete([]byte(employeeNo)); err != nil {
			return fmt.Errorf("store: reset bind failures %s: %w", employeeNo, err)
		}
		return nil
	})
}

// PruneExpired deletes the OAuth states, OAuth codes and bind sessions
// expired at now, and bind-attempt records that no longer count (lock expired
// or failures forgotten), in one transaction. It returns how many records it
// deleted. Safe to run at any time; it changes no answer the other methods give.
func (db *DB) PruneExpired(now time.Time) (int, error) {
	var n int
	err := db.Update(func(tx *Tx) error {
		n = 0
		for _, name := range [][]byte{bucketOAuthStates, bucketOAuthCodes, bucketSessions, bucketBindAttempts} {
			b := tx.tx.Bucket(name)
			var stale [][]byte
			err := b.ForEach(func(k, v []byte) error {
				var drop bool
				if string(name) == string(bucketBindAttempts) {
					var a bindAttempts
					if err := json.Unmarshal(v, &a); err != nil {
						return fmt.Errorf("decode %s/%q: %w", name, k, err)
					}
					drop = a.current(now) == (bindAttempts{})
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
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
