package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Scan is one recorded scan.
type Scan struct {
	StocktakeID string    `json:"stocktake_id"`
	OpenID      string    `json:"openid"`
	EmployeeNo  string    `json:"employee_no"`
	CodeType    string    `json:"code_type"`
	Code        string    `json:"code"`
	Location    string    `json:"location"`
	Qty         int       `json:"qty"`
	ScannedAt   time.Time `json:"scanned_at"`
	EventID     string    `json:"event_id"`
}

// SummaryRow is the total quantity of one code at one location.
type SummaryRow struct {
	Location string `json:"location"`
	Code     string `json:"code"`
	Qty      int    `json:"qty"`
}

// RecordScan appends s to its stocktake and returns how many scans s.OpenID
// has recorded in that stocktake, this one included. It is not idempotent by
// itself: guard it with Processed/MarkProcessed on the event id in the same
// transaction. Errors: ErrInvalid for an empty StocktakeID, OpenID or Code, a
// Qty below 1 or a ScannedAt not after 1970; ErrNotFound for an unknown
// stocktake; ErrConflict for a closed one.
func (tx *Tx) RecordScan(s Scan) (count int, err error) {
	switch {
	case s.StocktakeID == "", s.OpenID == "", s.Code == "":
		return 0, fmt.Errorf("store: record scan %s: empty stocktake, openid or code: %w", s.EventID, ErrInvalid)
	case s.Qty < 1:
		return 0, fmt.Errorf("store: record scan %s: qty %d: %w", s.EventID, s.Qty, ErrInvalid)
	case s.ScannedAt.Unix() <= 0:
		return 0, fmt.Errorf("store: record scan %s: scanned_at %s: %w", s.EventID, s.ScannedAt, ErrInvalid)
	}
	id := []byte(s.StocktakeID)
	if !bytes.Equal(tx.tx.Bucket(bucketMeta).Get(keyOpenStocktake), id) {
		if _, err := tx.Stocktake(s.StocktakeID); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("store: record scan %s: stocktake %s is closed: %w", s.EventID, s.StocktakeID, ErrConflict)
	}
	sb := tx.tx.Bucket(bucketScans).Bucket(id)
	sb.FillPercent = 1 // append-only
	seq, err := sb.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store: record scan %s: %w", s.EventID, err)
	}
	if err := sb.Put(u64(seq), appendScan(make([]byte, 0, 128), s)); err != nil {
		return 0, fmt.Errorf("store: record scan %s: %w", s.EventID, err)
	}
	cb := tx.tx.Bucket(bucketScanCounts).Bucket(id)
	n := getU64(cb.Get([]byte(s.OpenID))) + 1
	if err := cb.Put([]byte(s.OpenID), u64(n)); err != nil {
		return 0, fmt.Errorf("store: record scan %s: %w", s.EventID, err)
	}
	tb := tx.tx.Bucket(bucketScanSeconds)
	tb.FillPercent = 0.9 // mostly appended
	sec := u64(uint64(s.ScannedAt.Unix()))
	if err := tb.Put(sec, u64(getU64(tb.Get(sec))+1)); err != nil {
		return 0, fmt.Errorf("store: record scan %s: %w", s.EventID, err)
	}
	return int(n), nil
}

// ScanCount returns how many scans openid has recorded in stocktake id (0 if none).
func (tx *Tx) ScanCount(stocktakeID, openid string) int {
	cb := tx.tx.Bucket(bucketScanCounts).Bucket([]byte(stocktakeID))
	if cb == nil {
		return 0
	}
	return int(getU64(cb.Get([]byte(openid))))
}

// SetLocation sets openid's current location, stamped on its later scans;
// an empty location clears it. Idempotent.
func (tx *Tx) SetLocation(openid, location string) error {
	if openid == "" {
		return fmt.Errorf("store: set location: empty openid: %w", ErrInvalid)
	}
	b := tx.tx.Bucket(bucketLocations)
	var err error
	if location == "" {
		err = b.Delete([]byte(openid))
	} else {
		err = b.Put([]byte(openid), []byte(location))
	}
	if err != nil {
		return fmt.Errorf("store: set location %s: %w", openid, err)
	}
	return nil
}

// Location returns openid's current location, "" if none is set.
func (tx *Tx) Location(openid string) (string, error) {
	return string(tx.tx.Bucket(bucketLocations).Get([]byte(openid))), nil
}

// scanChunk is how many scans EachScan decodes per read transaction.
const scanChunk = 4096

// EachScan calls fn for each scan of stocktake id in recorded order, stopping
// at fn's first error, which it returns. It reads in chunks, each in its own
// short read transaction, so a slow fn (writing an export to a client) never
// holds up writers; scans recorded meanwhile may or may not be seen.
// It returns an error wrapping ErrNotFound for an unknown stocktake.
func (db *DB) EachScan(id string, fn func(Scan) error) error {
	var after uint64
	for {
		chunk := make([]Scan, 0, 64)
		err := db.View(func(tx *Tx) error {
			sb := tx.tx.Bucket(bucketScans).Bucket([]byte(id))
			if sb == nil || id == "" {
				return fmt.Errorf("store: scans %q: %w", id, ErrNotFound)
			}
			c := sb.Cursor()
			k, v := c.Seek(u64(after + 1))
			for ; k != nil && len(chunk) < scanChunk; k, v = c.Next() {
				s, err := decodeScan(v)
				if err != nil {
					return fmt.Errorf("store: scans %s: #%d: %w", id, getU64(k), err)
				}
				s.StocktakeID = id
				chunk = append(chunk, s)
				after = getU64(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range chunk {
			if err := fn(s); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
	}
}

// Scans returns every scan of stocktake id in recorded order, or an error
// wrapping ErrNotFound for an unknown stocktake. See EachScan to stream.
func (db *DB) Scans(stocktakeID string) ([]Scan, error) {
	var out []Scan
	err := db.EachScan(stocktakeID, func(s Scan) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Summary returns stocktake id's total quantity per location and code,
// sorted by location then code, or an error wrapping ErrNotFound.
func (db *DB) Summary(stocktakeID string) ([]SummaryRow, error) {
	type key struct{ loc, code string }
	totals := make(map[key]int)
	err := db.EachScan(stocktakeID, func(s Scan) error {
		totals[key{s.Location, s.Code}] += s.Qty
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]SummaryRow, 0, len(totals))
	for k, qty := range totals {
		rows = append(rows, SummaryRow{Location: k.loc, Code: k.code, Qty: qty})
	}
	slices.SortFunc(rows, func(a, b SummaryRow) int {
		return cmp.Or(cmp.Compare(a.Location, b.Location), cmp.Compare(a.Code, b.Code))
	})
	return rows, nil
}

// ScansSince counts the scans, in all stocktakes, scanned at or after t, to
// the second: a scan counts if its ScannedAt truncated to the second is not
// before t truncated to the second.
func (db *DB) ScansSince(t time.Time) (int, error) {
	var n uint64
	err := db.View(func(tx *Tx) error {
		c := tx.tx.Bucket(bucketScanSeconds).Cursor()
		from := max(t.Unix(), 0)
		for k, v := c.Seek(u64(uint64(from))); k != nil; k, v = c.Next() {
			n += getU64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: scans since %s: %w", t, err)
	}
	return int(n), nil
}

// scanFormat versions the binary scan encoding, which is about half the size
// of JSON and much cheaper to produce on the hot path.
const scanFormat = 1

// appendScan encodes s (without StocktakeID, implied by its bucket): a format
// byte, six length-prefixed strings, the quantity and the time in Unix nanoseconds.
func appendScan(b []byte, s Scan) []byte {
	b = append(b, scanFormat)
	for _, str := range [...]string{s.OpenID, s.EmployeeNo, s.CodeType, s.Code, s.Location, s.EventID} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendVarint(b, int64(s.Qty))
	return binary.AppendVarint(b, s.ScannedAt.UnixNano())
}

var errBadScan = errors.New("malformed scan record")

func decodeScan(b []byte) (Scan, error) {
	if len(b) == 0 || b[0] != scanFormat {
		return Scan{}, errBadScan
	}
	b = b[1:]
	var s Scan
	for _, dst := range [...]*string{&s.OpenID, &s.EmployeeNo, &s.CodeType, &s.Code, &s.Location, &s.EventID} {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return Scan{}, errBadScan
		}
		*dst = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	qty, w := binary.Varint(b)
	if w <= 0 {
		return Scan{}, errBadScan
	}
	b = b[w:]
	nanos, w := binary.Varint(b)
	if w <= 0 || w != len(b) {
		return Scan{}, errBadScan
	}
	s.Qty = int(qty)
	s.ScannedAt = time.Unix(0, nanos).UTC()
	return s, nil
}
