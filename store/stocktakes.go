package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Stocktake is one counting session. At most one is open at a time.
type Stocktake struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	OpenedAt time.Time `json:"opened_at"`
	ClosedAt time.Time `json:"closed_at,omitzero"` // zero while open
	Scans    int       `json:"scans"`              // scans recorded so far
}

// Open reports whether the stocktake is still open.
func (s Stocktake) Open() bool { return s.ClosedAt.IsZero() }

// OpenStocktake opens a new stocktake with an id of the form "ST0001"
// (increasing, never reused). It returns an error wrapping ErrConflict if
// one is already open, ErrInvalid if name is empty.
func (db *DB) OpenStocktake(name string, now time.Time) (Stocktake, error) {
	if strings.TrimSpace(name) == "" {
		return Stocktake{}, fmt.Errorf("store: open stocktake: empty name: %w", ErrInvalid)
	}
	var st Stocktake
	err := db.Update(func(tx *Tx) error {
		if open, err := tx.OpenStocktake(); err == nil {
			return fmt.Errorf("store: open stocktake %q: %s (%s) is open: %w", name, open.ID, open.Name, ErrConflict)
		}
		b := tx.tx.Bucket(bucketStocktakes)
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("store: open stocktake %q: %w", name, err)
		}
		st = Stocktake{ID: fmt.Sprintf("ST%04d", seq), Name: name, OpenedAt: now.UTC()}
		if _, err := tx.tx.Bucket(bucketScans).CreateBucketIfNotExists([]byte(st.ID)); err != nil {
			return fmt.Errorf("store: open stocktake %s: %w", st.ID, err)
		}
		if _, err := tx.tx.Bucket(bucketScanCounts).CreateBucketIfNotExists([]byte(st.ID)); err != nil {
			return fmt.Errorf("store: open stocktake %s: %w", st.ID, err)
		}
		if err := putJSON(b, st.ID, st); err != nil {
			return fmt.Errorf("store: open stocktake %s: %w", st.ID, err)
		}
		if err := tx.tx.Bucket(bucketMeta).Put(keyOpenStocktake, []byte(st.ID)); err != nil {
			return fmt.Errorf("store: open stocktake %s: %w", st.ID, err)
		}
		return nil
	})
	if err != nil {
		return Stocktake{}, err
	}
	return st, nil
}

// CloseStocktake closes stocktake id, after which no scan can be recorded in
// it. It returns an error wrapping ErrNotFound for an unknown id and
// ErrConflict if it is already closed.
func (db *DB) CloseStocktake(id string, now time.Time) (Stocktake, error) {
	var st Stocktake
	err := db.Update(func(tx *Tx) error {
		var err error
		if st, err = tx.Stocktake(id); err != nil {
			return err
		}
		if !st.Open() {
			return fmt.Errorf("store: close stocktake %s: closed at %s: %w", id, st.ClosedAt.Format(time.RFC3339), ErrConflict)
		}
		st.ClosedAt = now.UTC()
		if err := putJSON(tx.tx.Bucket(bucketStocktakes), id, st); err != nil {
			return fmt.Errorf("store: close stocktake %s: %w", id, err)
		}
		meta := tx.tx.Bucket(bucketMeta)
		if string(meta.Get(keyOpenStocktake)) == id {
			if err := meta.Delete(keyOpenStocktake); err != nil {
				return fmt.Errorf("store: close stocktake %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return Stocktake{}, err
	}
	return st, nil
}

// Stocktakes returns every stocktake, oldest first.
func (db *DB) Stocktakes() ([]Stocktake, error) {
	var out []Stocktake
	err := db.View(func(tx *Tx) error {
		return tx.tx.Bucket(bucketStocktakes).ForEach(func(k, v []byte) error {
			var st Stocktake
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("store: stocktakes: decode %s: %w", k, err)
			}
			st.Scans = tx.scanTotal(st.ID)
			out = append(out, st)
			return nil
		})
	})
	// "ST0002" < "ST0010" < "ST10000": shorter ids are older.
	slices.SortFunc(out, func(a, b Stocktake) int {
		return cmp.Or(cmp.Compare(len(a.ID), len(b.ID)), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

// OpenStocktakeNow returns the open stocktake, or an error wrapping ErrNotFound if none is open.
func (db *DB) OpenStocktakeNow() (Stocktake, error) {
	var st Stocktake
	err := db.View(func(tx *Tx) error {
		var err error
		st, err = tx.OpenStocktake()
		return err
	})
	return st, err
}

// Stocktake returns stocktake id, or an error wrapping ErrNotFound.
func (db *DB) Stocktake(id string) (Stocktake, error) {
	var st Stocktake
	err := db.View(func(tx *Tx) error {
		var err error
		st, err = tx.Stocktake(id)
		return err
	})
	return st, err
}

// OpenStocktake returns the open stocktake, or an error wrapping ErrNotFound if none is open.
func (tx *Tx) OpenStocktake() (Stocktake, error) {
	id := tx.tx.Bucket(bucketMeta).Get(keyOpenStocktake)
	if id == nil {
		return Stocktake{}, fmt.Errorf("store: open stocktake: none open: %w", ErrNotFound)
	}
	return tx.Stocktake(string(id))
}

// Stocktake returns stocktake id, or an error wrapping ErrNotFound.
func (tx *Tx) Stocktake(id string) (Stocktake, error) {
	var st Stocktake
	found, err := getJSON(tx.tx.Bucket(bucketStocktakes), id, &st)
	if err != nil {
		return Stocktake{}, fmt.Errorf("store: stocktake %s: %w", id, err)
	}
	if !found || id == "" {
		return Stocktake{}, fmt.Errorf("store: stocktake %q: %w", id, ErrNotFound)
	}
	st.Scans = tx.scanTotal(id)
	return st, nil
}

// scanTotal is the number of scans recorded in stocktake id: scans are never
// deleted, so it is the scan bucket's sequence.
func (tx *Tx) scanTotal(id string) int {
	if b := tx.tx.Bucket(bucketScans).Bucket([]byte(id)); b != nil {
		return int(b.Sequence())
	}
	return 0
}
