package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A person's scans are found, newest first, without reading a stocktake's
// scans: the latest ones by reference in their entry of the recent bucket
// (openid -> refs, oldest first), and older ones in the scan index (openid 0
// <global sequence> -> stocktake id + seq, in recorded order). A scan goes
// to the recent entry; when that holds recentMax, its oldest recentSpill
// move to the index at once. The recent bucket is small (one short value per
// person), so a batch of scans from many people dirties a few of its pages,
// and the index only a page per person every recentSpill of their scans,
// where one index entry per scan dirtied a page per person per batch.
const (
	recentMax   = 32
	recentSpill = 16
)

// scanRef locates a scan: its stocktake and its seq there.
type scanRef struct {
	id  string
	seq uint64
}

// A recent entry is recentFormat, the number of refs, then each ref
// (uvarint length, stocktake id, uvarint seq), oldest first. Entries of
// recentFormatUncounted (written by the first build of schema 6) lack the
// number; they are read, and rewritten in recentFormat by the next scan.
const (
	recentFormatUncounted = 1
	recentFormat          = 2
)

var errBadRecent = errors.New("malformed recent scans entry")

// decodeRecent parses a recent entry: refs, oldest first.
func decodeRecent(v []byte) ([]scanRef, error) {
	var b []byte
	want := -1
	switch {
	case len(v) >= 2 && v[0] == recentFormat:
		b, want = v[2:], int(v[1])
	case len(v) >= 1 && v[0] == recentFormatUncounted:
		b = v[1:]
	default:
		return nil, errBadRecent
	}
	refs := make([]scanRef, 0, max(want, 0))
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, errBadRecent
		}
		id := string(b[w : w+int(n)])
		b = b[w+int(n):]
		seq, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errBadRecent
		}
		b = b[w:]
		refs = append(refs, scanRef{id: id, seq: seq})
	}
	if want >= 0 && len(refs) != want {
		return nil, errBadRecent
	}
	return refs, nil
}

func appendRecent(b []byte, refs []scanRef) []byte {
	b = append(b, recentFormat, byte(len(refs)))
	for _, r := range refs {
		b = appendRef(b, r)
	}
	return b
}

func appendRef(b []byte, r scanRef) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.id)))
	b = append(b, r.id...)
	return binary.AppendUvarint(b, r.seq)
}

// indexScan adds s to its person's recent entry, moving the oldest ones to
// the scan index when the entry is full.
func (tx *Tx) indexScan(s Scan) error {
	rb := tx.tx.Bucket(bucketRecentScans)
	key := []byte(s.OpenID)
	ref := scanRef{id: s.StocktakeID, seq: s.Seq}
	v := rb.Get(key)
	if len(v) >= 2 && v[0] == recentFormat && v[1] < recentMax {
		// Room left: append without reading the refs.
		nv := appendRef(append(make([]byte, 0, len(v)+len(ref.id)+11), v...), ref)
		nv[1]++
		return rb.Put(key, nv)
	}
	var refs []scanRef
	if v != nil {
		var err error
		if refs, err = decodeRecent(v); err != nil {
			return fmt.Errorf("recent scans of %s: %w", s.OpenID, err)
		}
	}
	if len(refs) >= recentMax {
		for _, r := range refs[:recentSpill] {
			if err := tx.appendIndex(s.OpenID, r); err != nil {
				return err
			}
		}
		refs = refs[recentSpill:]
	}
	refs = append(refs, ref)
	return rb.Put(key, appendRecent(make([]byte, 0, 2+len(refs)*12), refs))
}

// appendIndex appends r to openid's scans in the scan index.
func (tx *Tx) appendIndex(openid string, r scanRef) error {
	ib := tx.tx.Bucket(bucketScanIndex)
	n, err := ib.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(append(append(make([]byte, 0, len(openid)+9), openid...), 0), n)
	return ib.Put(key, binary.BigEndian.AppendUint64([]byte(r.id), r.seq))
}

// eachOwnScan calls fn for openid's scans in open stocktakes, newest first,
// until fn returns false. It stops at the first scan older than since.
func (tx *Tx) eachOwnScan(openid string, since time.Time, fn func(Scan) bool) error {
	if openid == "" {
		return nil
	}
	// visit reports whether to go on.
	visit := func(r scanRef) (bool, error) {
		s, err := tx.scanAt(r.id, r.seq)
		if err != nil {
			return false, err
		}
		if s.ScannedAt.Before(since) {
			return false, nil
		}
		if !tx.isOpen(r.id) {
			return true, nil
		}
		return fn(s), nil
	}
	if v := tx.tx.Bucket(bucketRecentScans).Get([]byte(openid)); v != nil {
		refs, err := decodeRecent(v)
		if err != nil {
			return fmt.Errorf("recent scans of %s: %w", openid, err)
		}
		for i := len(refs) - 1; i >= 0; i-- {
			if more, err := visit(refs[i]); !more || err != nil {
				return err
			}
		}
	}
	prefix := append([]byte(openid), 0)
	c := tx.tx.Bucket(bucketScanIndex).Cursor()
	var k, v []byte
	if k, _ = c.Seek(append([]byte(openid), 1)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if len(v) < 8 {
			continue
		}
		if more, err := visit(scanRef{id: string(v[:len(v)-8]), seq: binary.BigEndian.Uint64(v[len(v)-8:])}); !more || err != nil {
			return err
		}
	}
	return nil
}
