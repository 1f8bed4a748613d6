package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Bind limits (SPEC §6, §11). Wrong bind codes are counted twice over:
//   - per employee: the MaxBindFailures-th wrong code for one employee
//     refuses every attempt for that employee, right or wrong, for
//     BindLockout;
//   - per openid: the MaxOpenIDBindFailures-th wrong code from one openid,
//     whatever the employee numbers, refuses every attempt from that openid
//     for OpenIDBindLockout.
//
// A count that is not locked is forgotten BindFailureMemory after its last
// failure; once a lock ends the count restarts from zero. Each counter is one
// record (per employee in the staff directory, per openid that passed
// OAuth), never one per attempt.
const (
	MaxBindFailures       = 5
	BindLockout           = 15 * time.Minute
	MaxOpenIDBindFailures = 10
	OpenIDBindLockout     = time.Hour
	BindFailureMemory     = 24 * time.Hour
)

// BindCounter is the wrong bind codes counted for one employee or openid.
type BindCounter struct {
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	// LockedUntil is set once Failures reached the limit; zero otherwise.
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// Locked reports whether the counter refuses attempts at now.
func (c BindCounter) Locked(now time.Time) bool {
	return !c.LockedUntil.IsZero() && now.Before(c.LockedUntil)
}

// current returns the counter as it stands at now: an ended lock or a
// forgotten count restarts from zero.
func (c BindCounter) current(now time.Time) BindCounter {
	if !c.LockedUntil.IsZero() && !now.Before(c.LockedUntil) {
		return BindCounter{}
	}
	if c.LockedUntil.IsZero() && !now.Before(c.LastFailure.Add(BindFailureMemory)) {
		return BindCounter{}
	}
	return c
}

func getCounter(b *bbolt.Bucket, key string, now time.Time) (BindCounter, error) {
	var c BindCounter
	if _, err := getJSON(b, key, &c); err != nil {
		return BindCounter{}, err
	}
	return c.current(now), nil
}

// countFailure adds one failure to the counter at key unless it is locked,
// locking it for lockout at the limit-th failure, and returns the counter.
func countFailure(b *bbolt.Bucket, key string, limit int, lockout time.Duration, now time.Time) (BindCounter, error) {
	c, err := getCounter(b, key, now)
	if err != nil {
		return BindCounter{}, err
	}
	if c.Locked(now) {
		return c, nil
	}
	c.Failures++
	c.LastFailure = now.UTC()
	if c.Failures >= limit {
		c.LockedUntil = now.Add(lockout).UTC()
	}
	if err := putJSON(b, key, c); err != nil {
		return BindCounter{}, err
	}
	return c, nil
}

// EmployeeBindCounter returns employeeNo's counter at now (zero if none).
func (tx *Tx) EmployeeBindCounter(employeeNo string, now time.Time) (BindCounter, error) {
	c, err := getCounter(tx.tx.Bucket(bucketBindAttempts), employeeNo, now)
	if err != nil {
		return BindCounter{}, fmt.Errorf("store: bind counter of employee %s: %w", employeeNo, err)
	}
	return c, nil
}

// OpenIDBindCounter returns openid's counter at now (zero if none).
func (tx *Tx) OpenIDBindCounter(openid string, now time.Time) (BindCounter, error) {
	c, err := getCounter(tx.tx.Bucket(bucketOpenIDAttempts), openid, now)
	if err != nil {
		return BindCounter{}, fmt.Errorf("store: bind counter of openid %s: %w", openid, err)
	}
	return c, nil
}

// CountEmployeeBindFailure counts a wrong bind code for employeeNo and
// returns the counter; the MaxBindFailures-th locks the employee until
// now+BindLockout. A failure while locked changes nothing. Only employees in
// the staff directory are counted: any other employeeNo is ErrNotFound and
// writes nothing, so that made-up employee numbers cannot grow the file.
func (tx *Tx) CountEmployeeBindFailure(employeeNo string, now time.Time) (BindCounter, error) {
	if _, err := tx.Staff(employeeNo); err != nil {
		return BindCounter{}, fmt.Errorf("store: count bind failure: %w", err)
	}
	c, err := countFailure(tx.tx.Bucket(bucketBindAttempts), employeeNo, MaxBindFailures, BindLockout, now)
	if err != nil {
		return BindCounter{}, fmt.Errorf("store: count bind failure of employee %s: %w", employeeNo, err)
	}
	return c, nil
}

// CountOpenIDBindFailure counts a wrong bind code (or unknown employee
// number) from openid and returns the counter; the MaxOpenIDBindFailures-th
// locks the openid until now+OpenIDBindLockout. A failure while locked
// changes nothing. Count only openids that passed OAuth (a bind session's).
func (tx *Tx) CountOpenIDBindFailure(openid string, now time.Time) (BindCounter, error) {
	if openid == "" {
		return BindCounter{}, fmt.Errorf("store: count bind failure: empty openid: %w", ErrInvalid)
	}
	c, err := countFailure(tx.tx.Bucket(bucketOpenIDAttempts), openid, MaxOpenIDBindFailures, OpenIDBindLockout, now)
	if err != nil {
		return BindCounter{}, fmt.Errorf("store: count bind failure of openid %s: %w", openid, err)
	}
	return c, nil
}

// ResetEmployeeBindFailures forgets employeeNo's failures and lock (after a
// correct code). Idempotent. The openid's count is kept: a person who knows
// one right pair must not be able to clear their count with it.
func (tx *Tx) ResetEmployeeBindFailures(employeeNo string) error {
	if err := tx.tx.Bucket(bucketBindAttempts).Delete([]byte(employeeNo)); err != nil {
		return fmt.Errorf("store: reset bind failures of %s: %w", employeeNo, err)
	}
	return nil
}

// BindLockoutEntry is one counter that still counts at the time asked: an
// employee's (EmployeeNo set) or an openid's (OpenID set).
type BindLockoutEntry struct {
	EmployeeNo string
	OpenID     string
	BindCounter
}

// BindLockouts returns the counters that count at now (failures not yet
// forgotten, or a lock not yet ended): the employees' sorted by employee
// number, then the openids' sorted by openid. A counter is locked when
// LockedUntil is after now.
func (db *DB) BindLockouts(now time.Time) ([]BindLockoutEntry, error) {
	var out []BindLockoutEntry
	err := db.View(func(tx *Tx) error {
		for _, name := range [][]byte{bucketBindAttempts, bucketOpenIDAttempts} {
			var part []BindLockoutEntry
			err := tx.tx.Bucket(name).ForEach(func(k, v []byte) error {
				var c BindCounter
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("decode %s/%q: %w", name, k, err)
				}
				if c = c.current(now); c == (BindCounter{}) {
					return nil
				}
				l := BindLockoutEntry{BindCounter: c}
				if string(name) == string(bucketBindAttempts) {
					l.EmployeeNo = string(k)
				} else {
					l.OpenID = string(k)
				}
				part = append(part, l)
				return nil
			})
			if err != nil {
				return fmt.Errorf("store: bind lockouts: %w", err)
			}
			sort.Slice(part, func(i, j int) bool {
				return part[i].EmployeeNo+part[i].OpenID < part[j].EmployeeNo+part[j].OpenID
			})
			out = append(out, part...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UnlockEmployee lifts employeeNo's lockout and forgets its failures, for
// the operator. Idempotent: an employee without a counter is not an error.
func (db *DB) UnlockEmployee(employeeNo string) error {
	return db.Update(func(tx *Tx) error {
		if err := tx.ResetEmployeeBindFailures(employeeNo); err != nil {
			return fmt.Errorf("store: unlock employee: %w", err)
		}
		return nil
	})
}

// UnlockOpenID lifts openid's lockout and forgets its failures, for the
// operator. Idempotent.
func (db *DB) UnlockOpenID(openid string) error {
	return db.Update(func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketOpenIDAttempts).Delete([]byte(openid)); err != nil {
			return fmt.Errorf("store: unlock openid %s: %w", openid, err)
		}
		return nil
	})
}
