package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

// A stocktake's running aggregates live in its bucket under scan_stats,
// kept up to date by RecordScan, SetScanQty and CancelScan, so that replies,
// the console and the variance never re-read every scan. Keys:
//
//	"t"                   totals: scans, qty, distinct codes, locations, people
//	"p" openid            person: scans, qty, employee number
//	"l" location          location: scans, qty
//	"c" code              code: scans
//	"v" location 0 sku    counted qty per (location, sku)
//
// Cancelled scans are left out of all of them.
const (
	statTotals   = 't'
	statPerson   = 'p'
	statLocation = 'l'
	statCode     = 'c'
	statVariance = 'v'
)

type totals struct{ scans, qty, codes, locations, people int64 }

func readTotals(b *bbolt.Bucket) totals {
	var t totals
	if b == nil {
		return t
	}
	v := b.Get([]byte{statTotals})
	if len(v) != 40 {
		return t
	}
	for i, dst := range [...]*int64{&t.scans, &t.qty, &t.codes, &t.locations, &t.people} {
		*dst = int64(binary.BigEndian.Uint64(v[i*8:]))
	}
	return t
}

func (t totals) bytes() []byte {
	b := make([]byte, 0, 40)
	for _, v := range [...]int64{t.scans, t.qty, t.codes, t.locations, t.people} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func statKey(kind byte, parts ...string) []byte {
	k := []byte{kind}
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func varianceKey(location, sku string) []byte {
	return append(append(append([]byte{}, location...), 0), sku...)
}

// pair reads a (scans, qty) value and what follows it.
func pair(v []byte) (scans, qty int64, rest []byte) {
	if len(v) < 16 {
		return 0, 0, nil
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), v[16:]
}

func putPair(b *bbolt.Bucket, key []byte, scans, qty int64, rest string) error {
	if scans <= 0 {
		return b.Delete(key)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(rest)), uint64(scans))
	v = binary.BigEndian.AppendUint64(v, uint64(qty))
	return b.Put(key, append(v, rest...))
}

// addStats adds a change of dScans scans and dQty quantity of scan s to its
// stocktake's aggregates in b, returning the person's new qty.
func addStats(b *bbolt.Bucket, s Scan, dScans, dQty int64) (int64, error) {
	t := readTotals(b)
	t.scans += dScans
	t.qty += dQty
	// per person, keeping the employee number
	pk := statKey(statPerson, s.OpenID)
	ps, pq, emp := pair(b.Get(pk))
	if len(emp) == 0 {
		emp = []byte(s.EmployeeNo)
	}
	t.people += flip(ps, ps+dScans)
	if err := putPair(b, pk, ps+dScans, pq+dQty, string(emp)); err != nil {
		return 0, err
	}
	lk := statKey(statLocation, s.Location)
	ls, lq, _ := pair(b.Get(lk))
	t.locations += flip(ls, ls+dScans)
	if err := putPair(b, lk, ls+dScans, lq+dQty, ""); err != nil {
		return 0, err
	}
	if dScans != 0 {
		ck := statKey(statCode, s.Code)
		cs := int64(getU64(b.Get(ck)))
		t.codes += flip(cs, cs+dScans)
		var err error
		if cs+dScans <= 0 {
			err = b.Delete(ck)
		} else {
			err = b.Put(ck, u64(uint64(cs+dScans)))
		}
		if err != nil {
			return 0, err
		}
	}
	vk := append([]byte{statVariance}, varianceKey(s.Location, s.SKU)...)
	vq := int64(getU64(b.Get(vk))) + dQty
	var err error
	if vq <= 0 {
		err = b.Delete(vk)
	} else {
		err = b.Put(vk, u64(uint64(vq)))
	}
	if err != nil {
		return 0, err
	}
	if err := b.Put([]byte{statTotals}, t.bytes()); err != nil {
		return 0, err
	}
	return pq + dQty, nil
}

// flip is +1 when a count rises from zero, -1 when it falls to zero.
func flip(before, after int64) int64 {
	switch {
	case before <= 0 && after > 0:
		return 1
	case before > 0 && after <= 0:
		return -1
	}
	return 0
}

// ScanCount returns openid's running count in stocktake id: the sum of the
// quantities of its scans that are not cancelled (0 if none).
func (tx *Tx) ScanCount(stocktakeID, openid string) int {
	b := tx.statsBucket(stocktakeID)
	if b == nil {
		return 0
	}
	_, q, _ := pair(b.Get(statKey(statPerson, openid)))
	return int(q)
}

// Count is the scans and quantity of one location or person.
type Count struct {
	Key        string `json:"key"`                   // location ("" for none) or openid
	EmployeeNo string `json:"employee_no,omitempty"` // for a person
	Scans      int    `json:"scans"`
	Qty        int    `json:"qty"`
}

// Progress is a stocktake's state for the console, cancelled scans left out.
type Progress struct {
	Stocktake  Stocktake `json:"stocktake"`
	Scans      int       `json:"scans"`
	Qty        int       `json:"qty"`
	Codes      int       `json:"codes"`
	Locations  int       `json:"locations"`
	People     int       `json:"people"`
	ByLocation []Count   `json:"by_location"` // sorted by location
	ByPerson   []Count   `json:"by_person"`   // sorted by openid
	Latest     []Scan    `json:"latest"`      // newest first, cancelled ones marked
}

// Progress returns stocktake id's progress and its latest scans (at most
// latest), from the running aggregates: its cost grows with the number of
// locations and people, not of scans. ErrNotFound for an unknown stocktake.
func (db *DB) Progress(id string, latest int) (Progress, error) {
	var p Progress
	err := db.View(func(tx *Tx) error {
		st, err := tx.Stocktake(id)
		if err != nil {
			return err
		}
		p.Stocktake = st
		b := tx.statsBucket(id)
		t := readTotals(b)
		p.Scans, p.Qty, p.Codes, p.Locations, p.People = int(t.scans), int(t.qty), int(t.codes), int(t.locations), int(t.people)
		p.ByLocation, p.ByPerson = []Count{}, []Count{}
		if b != nil {
			c := b.Cursor()
			for k, v := c.Seek([]byte{statLocation}); k != nil && k[0] == statLocation; k, v = c.Next() {
				s, q, _ := pair(v)
				p.ByLocation = append(p.ByLocation, Count{Key: string(k[1:]), Scans: int(s), Qty: int(q)})
			}
			for k, v := c.Seek([]byte{statPerson}); k != nil && k[0] == statPerson; k, v = c.Next() {
				s, q, emp := pair(v)
				p.ByPerson = append(p.ByPerson, Count{Key: string(k[1:]), EmployeeNo: string(emp), Scans: int(s), Qty: int(q)})
			}
		}
		p.Latest, err = tx.latestScans(id, latest)
		return err
	})
	if err != nil {
		return Progress{}, err
	}
	return p, nil
}

// latestScans returns stocktake id's last n scans, newest first.
func (tx *Tx) latestScans(id string, n int) ([]Scan, error) {
	out := []Scan{}
	sb := tx.tx.Bucket(bucketScans).Bucket([]byte(id))
	if sb == nil {
		return out, nil
	}
	c := sb.Cursor()
	for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
		s, err := decodeScan(v)
		if err != nil {
			return nil, fmt.Errorf("store: scans %s: #%d: %w", id, getU64(k), err)
		}
		s.StocktakeID, s.Seq = id, getU64(k)
		out = append(out, s)
	}
	return out, nil
}

// VarianceRow compares the book stock of one (location, sku) with the count.
type VarianceRow struct {
	Location   string `json:"location"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Expected   int    `json:"expected"`
	Counted    int    `json:"counted"`
	Difference int    `json:"difference"` // Counted - Expected
}

// Variance returns one row per (location, sku) of stocktake id that was
// expected or counted, sorted by location then sku, cancelled scans left
// out, names from the item master. It merges the frozen book stock with the
// running counts, so it never reads the scans. ErrNotFound for an unknown
// stocktake.
func (db *DB) Variance(id string) ([]VarianceRow, error) {
	var rows []VarianceRow
	err := db.View(func(tx *Tx) error {
		if _, err := tx.Stocktake(id); err != nil {
			return err
		}
		rows = []VarianceRow{}
		var ec, cc *bbolt.Cursor
		if b := tx.tx.Bucket(bucketExpected).Bucket([]byte(id)); b != nil {
			ec = b.Cursor()
		}
		if b := tx.statsBucket(id); b != nil {
			cc = b.Cursor()
		}
		var ek, ev, ck, cv []byte
		if ec != nil {
			ek, ev = ec.First()
		}
		if cc != nil {
			ck, cv = cc.Seek([]byte{statVariance})
			if ck != nil && ck[0] != statVariance {
				ck = nil
			}
		}
		names := map[string]string{}
		for ek != nil || ck != nil {
			var key []byte
			var r VarianceRow
			switch c := compareKeys(ek, ck); {
			case c < 0:
				key, r.Expected = ek, int(getU64(ev))
				ek, ev = ec.Next()
			case c > 0:
				key, r.Counted = ck[1:], int(getU64(cv))
				ck, cv = cc.Next()
			default:
				key, r.Expected, r.Counted = ek, int(getU64(ev)), int(getU64(cv))
				ek, ev = ec.Next()
				ck, cv = cc.Next()
			}
			if ck != nil && ck[0] != statVariance {
				ck = nil
			}
			loc, sku, _ := bytes.Cut(key, []byte{0})
			r.Location, r.SKU = string(loc), string(sku)
			r.Difference = r.Counted - r.Expected
			name, ok := names[r.SKU]
			if !ok {
				name = tx.SKUName(r.SKU)
				names[r.SKU] = name
			}
			r.Name = name
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// compareKeys orders an expected key against a counted one ("v" + key);
// nil sorts after everything.
func compareKeys(ek, ck []byte) int {
	switch {
	case ek == nil:
		return 1
	case ck == nil:
		return -1
	}
	return bytes.Compare(ek, ck[1:])
}
