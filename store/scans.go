package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
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
	SKU         string    `json:"sku"`  // the item master's sku, else the code
	Name        string    `json:"name"` // the item master's name, else ""
	// Seq numbers the scan within its stocktake (from 1); with StocktakeID
	// it is the scan's reference (see Ref).
	Seq       uint64 `json:"-"`
	Cancelled bool   `json:"cancelled,omitempty"`
}

// Ref returns the scan's reference, e.g. "ST0001-42".
func (s Scan) Ref() string { return s.StocktakeID + "-" + strconv.FormatUint(s.Seq, 10) }

// ParseScanRef splits a reference made by Scan.Ref; ok is false if it is
// malformed.
func ParseScanRef(ref string) (stocktakeID string, seq uint64, ok bool) {
	i := strings.LastIndexByte(ref, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(ref[i+1:], 10, 64)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return ref[:i], n, true
}

// SummaryRow is the total quantity of one code at one location.
type SummaryRow struct {
	Location string `json:"location"`
	Code     string `json:"code"`
	Qty      int    `json:"qty"`
}

// Recorded is what RecordScan, SetScanQty and CancelScan did.
type Recorded struct {
	Scan Scan // as stored now
	// Count is the person's running count in the scan's stocktake: the sum
	// of the quantities of their scans that are not cancelled.
	Count int
	// Unknown is set when an item master exists and the code is not in it.
	Unknown bool
}

// Quantity bounds for a scan.
const (
	MinQty = 1
	MaxQty = 99999
)

// EditWindow is how long after it was scanned a scan's quantity may be set
// or the scan cancelled.
const EditWindow = 10 * time.Minute

// RecordScan appends s to its stocktake, with the sku and name of its code
// from the item master (an unknown code keeps s.SKU, else the code, and
// s.Name), and updates the running aggregates. It is not idempotent by
// itself: guard it with Processed/MarkProcessed on the event id in the same
// transaction. Errors: ErrInvalid for an empty StocktakeID, OpenID or Code, a
// Qty outside MinQty..MaxQty or a ScannedAt not after 1970; ErrNotFound for
// an unknown stocktake; ErrConflict for a closed one.
func (tx *Tx) RecordScan(s Scan) (Recorded, error) {
	switch {
	case s.StocktakeID == "", s.OpenID == "", s.Code == "":
		return Recorded{}, fmt.Errorf("store: record scan %s: empty stocktake, openid or code: %w", s.EventID, ErrInvalid)
	case s.Qty < MinQty || s.Qty > MaxQty:
		return Recorded{}, fmt.Errorf("store: record scan %s: qty %d: %w", s.EventID, s.Qty, ErrInvalid)
	case s.ScannedAt.Unix() <= 0:
		return Recorded{}, fmt.Errorf("store: record scan %s: scanned_at %s: %w", s.EventID, s.ScannedAt, ErrInvalid)
	}
	if !tx.isOpen(s.StocktakeID) {
		if _, err := tx.Stocktake(s.StocktakeID); err != nil {
			return Recorded{}, err
		}
		return Recorded{}, fmt.Errorf("store: record scan %s: stocktake %s is closed: %w", s.EventID, s.StocktakeID, ErrConflict)
	}
	fail := func(err error) (Recorded, error) {
		return Recorded{}, fmt.Errorf("store: record scan %s: %w", s.EventID, err)
	}
	var unknown bool
	if v := tx.tx.Bucket(bucketItems).Get([]byte(s.Code)); v != nil {
		it, err := decodeItem(s.Code, v)
		if err != nil {
			return fail(err)
		}
		s.SKU, s.Name = it.SKU, it.Name
	} else {
		if s.SKU == "" {
			s.SKU = s.Code
		}
		unknown = tx.HasItems()
	}
	id := []byte(s.StocktakeID)
	sb := tx.tx.Bucket(bucketScans).Bucket(id)
	sb.FillPercent = 1 // append-only
	seq, err := sb.NextSequence()
	if err != nil {
		return fail(err)
	}
	s.Seq, s.Cancelled = seq, false
	if err := sb.Put(u64(seq), appendScan(make([]byte, 0, 160), s)); err != nil {
		return fail(err)
	}
	count, err := addStats(tx.statsBucket(s.StocktakeID), s, 1, int64(s.Qty))
	if err != nil {
		return fail(err)
	}
	if err := tx.indexScan(s); err != nil {
		return fail(err)
	}
	tb := tx.tx.Bucket(bucketScanSeconds)
	tb.FillPercent = 0.9 // mostly appended
	sec := u64(uint64(s.ScannedAt.Unix()))
	if err := tb.Put(sec, u64(getU64(tb.Get(sec))+1)); err != nil {
		return fail(err)
	}
	return Recorded{Scan: s, Count: int(count), Unknown: unknown}, nil
}

func (tx *Tx) scanAt(id string, seq uint64) (Scan, error) {
	sb := tx.tx.Bucket(bucketScans).Bucket([]byte(id))
	if sb == nil {
		return Scan{}, fmt.Errorf("store: scan %s-%d: %w", id, seq, ErrNotFound)
	}
	v := sb.Get(u64(seq))
	if v == nil {
		return Scan{}, fmt.Errorf("store: scan %s-%d: %w", id, seq, ErrNotFound)
	}
	s, err := decodeScan(v)
	if err != nil {
		return Scan{}, fmt.Errorf("store: scan %s-%d: %w", id, seq, err)
	}
	s.StocktakeID, s.Seq = id, seq
	return s, nil
}

// LatestScan returns openid's most recent scan in an open stocktake if it
// was scanned less than EditWindow before now; with live, its most recent
// one that is not cancelled. ErrNotFound if there is none.
func (tx *Tx) LatestScan(openid string, now time.Time, live bool) (Scan, error) {
	var found *Scan
	err := tx.eachOwnScan(openid, now.Add(-EditWindow), func(s Scan) bool {
		if live && s.Cancelled {
			return true
		}
		if now.Sub(s.ScannedAt) < EditWindow {
			found = &s
		}
		return false
	})
	if err != nil {
		return Scan{}, err
	}
	if found == nil {
		return Scan{}, fmt.Errorf("store: latest scan of %s: none in the last %s: %w", openid, EditWindow, ErrNotFound)
	}
	return *found, nil
}

// RecentScans returns openid's latest scans (at most n, newest first) in
// the open stocktakes, cancelled ones included and marked.
func (tx *Tx) RecentScans(openid string, n int) ([]Scan, error) {
	out := []Scan{}
	open, err := tx.OpenStocktakes()
	if err != nil || len(open) == 0 || n <= 0 {
		return out, err
	}
	since := open[0].OpenedAt
	for _, st := range open {
		if st.OpenedAt.Before(since) { // scans of open stocktakes are not older
			since = st.OpenedAt
		}
	}
	// ScannedAt may come from the client's event time: allow some skew.
	err = tx.eachOwnScan(openid, since.Add(-time.Hour), func(s Scan) bool {
		out = append(out, s)
		return len(out) < n
	})
	return out, err
}

// editable fetches openid's scan ref for a change at now: ErrNotFound if it
// does not exist or is not openid's, ErrConflict if its stocktake is closed
// or it is cancelled, ErrExpired if it is EditWindow old or older.
func (tx *Tx) editable(openid, ref string, now time.Time) (Scan, error) {
	id, seq, ok := ParseScanRef(ref)
	if !ok {
		return Scan{}, fmt.Errorf("store: scan %q: bad reference: %w", ref, ErrNotFound)
	}
	s, err := tx.scanAt(id, seq)
	if err != nil {
		return Scan{}, err
	}
	switch {
	case s.OpenID != openid || openid == "":
		return Scan{}, fmt.Errorf("store: scan %s: not %s's: %w", ref, openid, ErrNotFound)
	case !tx.isOpen(id):
		return Scan{}, fmt.Errorf("store: scan %s: stocktake %s is closed: %w", ref, id, ErrConflict)
	case s.Cancelled:
		return Scan{}, fmt.Errorf("store: scan %s: cancelled: %w", ref, ErrConflict)
	case now.Sub(s.ScannedAt) >= EditWindow:
		return Scan{}, fmt.Errorf("store: scan %s: scanned at %s, more than %s ago: %w", ref, s.ScannedAt.Format(time.RFC3339), EditWindow, ErrExpired)
	}
	return s, nil
}

// SetScanQty sets the quantity of openid's scan ref (see Scan.Ref) at now
// and updates the running counts. Errors: ErrInvalid for a qty outside
// MinQty..MaxQty; ErrNotFound if the scan does not exist or is not
// openid's; ErrConflict if its stocktake is closed or it is cancelled;
// ErrExpired if it was scanned EditWindow or longer before now. Setting the
// same quantity again changes nothing.
func (tx *Tx) SetScanQty(openid, ref string, qty int, now time.Time) (Recorded, error) {
	if qty < MinQty || qty > MaxQty {
		return Recorded{}, fmt.Errorf("store: set qty of scan %s: %d not in %d..%d: %w", ref, qty, MinQty, MaxQty, ErrInvalid)
	}
	s, err := tx.editable(openid, ref, now)
	if err != nil {
		return Recorded{}, err
	}
	d := int64(qty - s.Qty)
	s.Qty = qty
	return tx.rewrite(s, 0, d)
}

// CancelScan marks openid's scan ref cancelled: it stays stored but leaves
// every count, summary, variance and export. Errors as SetScanQty's
// (cancelling a cancelled scan is ErrConflict).
func (tx *Tx) CancelScan(openid, ref string, now time.Time) (Recorded, error) {
	s, err := tx.editable(openid, ref, now)
	if err != nil {
		return Recorded{}, err
	}
	s.Cancelled = true
	r, err := tx.rewrite(s, -1, -int64(s.Qty))
	if err != nil {
		return Recorded{}, err
	}
	tb := tx.tx.Bucket(bucketScanSeconds)
	sec := u64(uint64(s.ScannedAt.Unix()))
	if n := getU64(tb.Get(sec)); n > 1 {
		err = tb.Put(sec, u64(n-1))
	} else {
		err = tb.Delete(sec)
	}
	if err != nil {
		return Recorded{}, fmt.Errorf("store: cancel scan %s: %w", s.Ref(), err)
	}
	return r, nil
}

func (tx *Tx) rewrite(s Scan, dScans, dQty int64) (Recorded, error) {
	sb := tx.tx.Bucket(bucketScans).Bucket([]byte(s.StocktakeID))
	if err := sb.Put(u64(s.Seq), appendScan(make([]byte, 0, 160), s)); err != nil {
		return Recorded{}, fmt.Errorf("store: change scan %s: %w", s.Ref(), err)
	}
	count, err := addStats(tx.statsBucket(s.StocktakeID), s, dScans, dQty)
	if err != nil {
		return Recorded{}, fmt.Errorf("store: change scan %s: %w", s.Ref(), err)
	}
	return Recorded{Scan: s, Count: int(count)}, nil
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

// EachScan calls fn for each scan of stocktake id that is not cancelled, in
// recorded order, stopping at fn's first error, which it returns: what the
// exports stream. See EachScanAll.
func (db *DB) EachScan(id string, fn func(Scan) error) error {
	return db.EachScanAll(id, func(s Scan) error {
		if s.Cancelled {
			return nil
		}
		return fn(s)
	})
}

// EachScanAll calls fn for each scan of stocktake id, cancelled ones
// included, in recorded order, stopping at fn's first error, which it
// returns. It reads in chunks, each in its own short read transaction, so a
// slow fn (writing an export to a client) never holds up writers; scans
// recorded or changed meanwhile may or may not be seen. It returns an error
// wrapping ErrNotFound for an unknown stocktake.
func (db *DB) EachScanAll(id string, fn func(Scan) error) error {
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
				s.StocktakeID, s.Seq = id, getU64(k)
				chunk = append(chunk, s)
				after = s.Seq
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

// Scans returns every scan of stocktake id that is not cancelled, in
// recorded order, or an error wrapping ErrNotFound for an unknown
// stocktake. See EachScan to stream.
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
// cancelled scans left out, sorted by location then code, or an error
// wrapping ErrNotFound.
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
// before t truncated to the second. Cancelled scans are left out, as from
// every count.
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

// The binary scan encoding is about half the size of JSON and much cheaper
// to produce on the hot path. Format 1 (written before the item master)
// holds six strings, the quantity and the time; format 2 adds the sku (""
// when it equals the code), the name and a flags byte.
const (
	scanFormat1 = 1
	scanFormat  = 2

	flagCancelled = 1
)

// appendScan encodes s (without StocktakeID and Seq, implied by its key and
// bucket) in the current format.
func appendScan(b []byte, s Scan) []byte {
	b = append(b, scanFormat)
	sku := s.SKU
	if sku == s.Code {
		sku = ""
	}
	for _, str := range [...]string{s.OpenID, s.EmployeeNo, s.CodeType, s.Code, s.Location, s.EventID, sku, s.Name} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendVarint(b, int64(s.Qty))
	b = binary.AppendVarint(b, s.ScannedAt.UnixNano())
	var flags byte
	if s.Cancelled {
		flags |= flagCancelled
	}
	return append(b, flags)
}

var errBadScan = errors.New("malformed scan record")

func decodeScan(b []byte) (Scan, error) {
	if len(b) == 0 || (b[0] != scanFormat1 && b[0] != scanFormat) {
		return Scan{}, errBadScan
	}
	format := b[0]
	b = b[1:]
	var s Scan
	fields := []*string{&s.OpenID, &s.EmployeeNo, &s.CodeType, &s.Code, &s.Location, &s.EventID}
	if format == scanFormat {
		fields = append(fields, &s.SKU, &s.Name)
	}
	for _, dst := range fields {
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
	if w <= 0 {
		return Scan{}, errBadScan
	}
	b = b[w:]
	switch {
	case format == scanFormat1 && len(b) == 0:
	case format == scanFormat && len(b) == 1:
		s.Cancelled = b[0]&flagCancelled != 0
	default:
		return Scan{}, errBadScan
	}
	if s.SKU == "" {
		s.SKU = s.Code
	}
	s.Qty = int(qty)
	s.ScannedAt = time.Unix(0, nanos).UTC()
	return s, nil
}

// rebuildScanState rebuilds the aggregates and the scan index from the
// scans of every stocktake (schema migration to version 3).
func rebuildScanState(tx *bbolt.Tx) error {
	t := &Tx{tx: tx}
	var ids [][]byte
	if err := tx.Bucket(bucketStocktakes).ForEach(func(k, _ []byte) error {
		ids = append(ids, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(ids, func(a, b []byte) int { return cmp.Or(cmp.Compare(len(a), len(b)), bytes.Compare(a, b)) })
	for _, id := range ids {
		for _, parent := range [][]byte{bucketScans, bucketScanStats, bucketExpected} {
			if _, err := tx.Bucket(parent).CreateBucketIfNotExists(id); err != nil {
				return err
			}
		}
		stats := tx.Bucket(bucketScanStats).Bucket(id)
		c := tx.Bucket(bucketScans).Bucket(id).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			s, err := decodeScan(v)
			if err != nil {
				return fmt.Errorf("scan %s-%d: %w", id, getU64(k), err)
			}
			s.StocktakeID, s.Seq = string(id), getU64(k)
			if !s.Cancelled {
				if _, err := addStats(stats, s, 1, int64(s.Qty)); err != nil {
					return err
				}
			}
			if err := t.appendIndex(s.OpenID, scanRef{id: s.StocktakeID, seq: s.Seq}); err != nil {
				return err
			}
		}
	}
	return nil
}
