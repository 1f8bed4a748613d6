package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// Stocktake is one counting session. Several may be open at once when their
// scopes (Locations) do not overlap.
type Stocktake struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	OpenedAt time.Time `json:"opened_at"`
	ClosedAt time.Time `json:"closed_at,omitzero"` // zero while open
	// Locations are the location prefixes the stocktake covers; none
	// means every location.
	Locations []string `json:"locations,omitempty"`
	// ExpectedRows is how many book-stock rows were frozen at open.
	ExpectedRows int `json:"expected_rows,omitempty"`
	Scans        int `json:"scans"` // scans recorded so far, cancelled ones left out
}

// Open reports whether the stocktake is still open.
func (s Stocktake) Open() bool { return s.ClosedAt.IsZero() }

// Covers reports whether location is in the stocktake's scope: it has no
// Locations, or location begins with one of them. The empty location (no
// location set) is covered only by a stocktake without Locations.
func (s Stocktake) Covers(location string) bool {
	if len(s.Locations) == 0 {
		return true
	}
	for _, p := range s.Locations {
		if strings.HasPrefix(location, p) {
			return true
		}
	}
	return false
}

// ScopesOverlap reports whether two scopes overlap: either is empty (covers
// everything), or a prefix of one begins with a prefix of the other.
func ScopesOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if strings.HasPrefix(x, y) || strings.HasPrefix(y, x) {
				return true
			}
		}
	}
	return false
}

// Expected is one book-stock row: the quantity of sku the books expect at
// location.
type Expected struct {
	Location string `json:"location"`
	SKU      string `json:"sku"`
	Qty      int    `json:"qty"`
}

// StocktakeSpec is what OpenStocktakeSpec opens.
type StocktakeSpec struct {
	Name      string
	Locations []string   // location prefixes; none covers every location
	Expected  []Expected // book stock, frozen at open; never shown to staff
}

// OpenStocktake opens a stocktake without scope or book stock; see
// OpenStocktakeSpec.
func (db *DB) OpenStocktake(name string, now time.Time) (Stocktake, error) {
	return db.OpenStocktakeSpec(StocktakeSpec{Name: name}, now)
}

// OpenStocktakeSpec opens a new stocktake with an id of the form "ST0001"
// (increasing, never reused), its scope and its book stock, all or nothing.
// Location prefixes are trimmed of spaces. Errors: ErrInvalid for an empty
// or too long name, an empty or too long location prefix, or a bad book-stock row (empty or too long sku or
// location, a negative qty, a (location, sku) repeated, a location outside
// the scope; the message names the row, counted from 1); ErrConflict when
// its scope overlaps an open stocktake's, with a message naming that one
// ("ST0001 (march) is open and covers ...").
func (db *DB) OpenStocktakeSpec(spec StocktakeSpec, now time.Time) (Stocktake, error) {
	name := spec.Name
	if strings.TrimSpace(name) == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return Stocktake{}, fmt.Errorf("store: open stocktake: empty, too long or not UTF-8 name: %w", ErrInvalid)
	}
	var locs []string
	for _, p := range spec.Locations {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > MaxLocationLen || !utf8.ValidString(p) {
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: location prefix %q empty, too long or not UTF-8: %w", name, p, ErrInvalid)
		}
		if !slices.Contains(locs, p) {
			locs = append(locs, p)
		}
	}
	st := Stocktake{Name: name, OpenedAt: now.UTC(), Locations: locs, ExpectedRows: len(spec.Expected)}
	seen := make(map[string]int, len(spec.Expected))
	for i, e := range spec.Expected {
		switch {
		case strings.TrimSpace(e.SKU) == "" || len(e.SKU) > MaxSKULen || strings.ContainsRune(e.SKU, 0) || !utf8.ValidString(e.SKU):
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: row %d: sku %q empty, too long or not UTF-8: %w", name, i+1, e.SKU, ErrInvalid)
		case len(e.Location) > MaxLocationLen || strings.ContainsRune(e.Location, 0) || !utf8.ValidString(e.Location):
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: row %d: location too long or not UTF-8: %w", name, i+1, ErrInvalid)
		case e.Qty < 0:
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: row %d: qty %d is negative: %w", name, i+1, e.Qty, ErrInvalid)
		case !st.Covers(e.Location):
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: row %d: location %q is outside the stocktake's locations %s: %w", name, i+1, e.Location, strings.Join(locs, ","), ErrInvalid)
		}
		k := string(varianceKey(e.Location, e.SKU))
		if j, dup := seen[k]; dup {
			return Stocktake{}, fmt.Errorf("store: open stocktake %q: row %d: location %q sku %q repeats row %d: %w", name, i+1, e.Location, e.SKU, j, ErrInvalid)
		}
		seen[k] = i + 1
	}
	err := db.Update(func(tx *Tx) error {
		open, err := tx.OpenStocktakes()
		if err != nil {
			return err
		}
		for _, o := range open {
			if ScopesOverlap(o.Locations, locs) {
				return fmt.Errorf("store: open stocktake %q: %s (%s) is open and covers %s: %w", name, o.ID, o.Name, scopeText(o.Locations), ErrConflict)
			}
		}
		b := tx.tx.Bucket(bucketStocktakes)
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("store: open stocktake %q: %w", name, err)
		}
		st.ID = fmt.Sprintf("ST%04d", seq)
		id := []byte(st.ID)
		fail := func(err error) error { return fmt.Errorf("store: open stocktake %s: %w", st.ID, err) }
		for _, parent := range [][]byte{bucketScans, bucketScanStats, bucketExpected} {
			if _, err := tx.tx.Bucket(parent).CreateBucketIfNotExists(id); err != nil {
				return fail(err)
			}
		}
		eb := tx.tx.Bucket(bucketExpected).Bucket(id)
		for _, e := range spec.Expected {
			if err := eb.Put(varianceKey(e.Location, e.SKU), u64(uint64(e.Qty))); err != nil {
				return fail(err)
			}
		}
		if err := putJSON(b, st.ID, st); err != nil {
			return fail(err)
		}
		if err := tx.tx.Bucket(bucketOpenStocktakes).Put(id, nil); err != nil {
			return fail(err)
		}
		return nil
	})
	if err != nil {
		return Stocktake{}, err
	}
	return st, nil
}

func scopeText(locs []string) string {
	if len(locs) == 0 {
		return "every location"
	}
	return "locations " + strings.Join(locs, ",")
}

// CloseStocktake closes stocktake id, after which no scan can be recorded in
// it and none of its scans changed. It returns an error wrapping ErrNotFound
// for an unknown id and ErrConflict if it is already closed.
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
		if err := tx.tx.Bucket(bucketOpenStocktakes).Delete([]byte(id)); err != nil {
			return fmt.Errorf("store: close stocktake %s: %w", id, err)
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
	sortStocktakes(out)
	return out, err
}

// "ST0002" < "ST0010" < "ST10000": shorter ids are older.
func sortStocktakes(list []Stocktake) {
	slices.SortFunc(list, func(a, b Stocktake) int {
		return cmp.Or(cmp.Compare(len(a.ID), len(b.ID)), strings.Compare(a.ID, b.ID))
	})
}

// OpenStocktakeNow returns the oldest open stocktake, or an error wrapping
// ErrNotFound if none is open. With scoped stocktakes several may be open:
// see OpenStocktakesNow.
func (db *DB) OpenStocktakeNow() (Stocktake, error) {
	list, err := db.OpenStocktakesNow()
	if err != nil {
		return Stocktake{}, err
	}
	if len(list) == 0 {
		return Stocktake{}, fmt.Errorf("store: open stocktake: none open: %w", ErrNotFound)
	}
	return list[0], nil
}

// OpenStocktakesNow returns the open stocktakes, oldest first (none: empty).
func (db *DB) OpenStocktakesNow() ([]Stocktake, error) {
	var list []Stocktake
	err := db.View(func(tx *Tx) error {
		var err error
		list, err = tx.OpenStocktakes()
		return err
	})
	return list, err
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

// OpenStocktakes returns the open stocktakes, oldest first (none: empty).
func (tx *Tx) OpenStocktakes() ([]Stocktake, error) {
	var list []Stocktake
	err := tx.tx.Bucket(bucketOpenStocktakes).ForEach(func(k, _ []byte) error {
		st, err := tx.Stocktake(string(k))
		if err != nil {
			return err
		}
		list = append(list, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortStocktakes(list)
	return list, nil
}

// StocktakeFor returns the open stocktake that covers location (scopes of
// open stocktakes never overlap, so there is at most one), or an error
// wrapping ErrNotFound if none does.
func (tx *Tx) StocktakeFor(location string) (Stocktake, error) {
	open, err := tx.OpenStocktakes()
	if err != nil {
		return Stocktake{}, err
	}
	if st, ok := Covering(open, location); ok {
		return st, nil
	}
	return Stocktake{}, fmt.Errorf("store: stocktake for location %q: none open covers it: %w", location, ErrNotFound)
}

// Covering returns the stocktake of open whose scope covers location: the
// one a scan there goes to (the scopes of open stocktakes never overlap).
func Covering(open []Stocktake, location string) (Stocktake, bool) {
	for _, st := range open {
		if st.Covers(location) {
			return st, true
		}
	}
	return Stocktake{}, false
}

// isOpen reports whether stocktake id is open.
func (tx *Tx) isOpen(id string) bool {
	return tx.tx.Bucket(bucketOpenStocktakes).Get([]byte(id)) != nil
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

// scanTotal is the number of scans recorded in stocktake id, cancelled ones
// left out.
func (tx *Tx) scanTotal(id string) int {
	return int(readTotals(tx.statsBucket(id)).scans)
}

func (tx *Tx) statsBucket(id string) *bbolt.Bucket {
	return tx.tx.Bucket(bucketScanStats).Bucket([]byte(id))
}
