package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Item is one barcode of the item master: Code belongs to one SKU; one SKU
// may have several codes.
type Item struct {
	Code string `json:"code"`
	SKU  string `json:"sku"`
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
}

// Length limits (bytes) of the fields the item master and stocktakes take.
const (
	MaxCodeLen     = 256
	MaxSKULen      = 64
	MaxNameLen     = 128
	MaxUnitLen     = 64
	MaxLocationLen = 64
)

// ImportItems adds or replaces the items keyed by code, all or nothing: one
// bad row (empty or too long code or sku, a too long name or unit, text that
// is not UTF-8, a code repeated within rows) refuses the whole import with
// an error wrapping ErrInvalid that names the row ("row 3: ..."), rows
// counted from 1. It returns how many codes were new and how many existed.
func (db *DB) ImportItems(rows []Item) (added, updated int, err error) {
	seen := make(map[string]int, len(rows))
	for i, it := range rows {
		if err := checkItem(it); err != nil {
			return 0, 0, fmt.Errorf("store: import items: row %d: %w", i+1, err)
		}
		if j, dup := seen[it.Code]; dup {
			return 0, 0, fmt.Errorf("store: import items: row %d: code %q repeats row %d: %w", i+1, it.Code, j, ErrInvalid)
		}
		seen[it.Code] = i + 1
	}
	err = db.Update(func(tx *Tx) error {
		added, updated = 0, 0
		ib := tx.tx.Bucket(bucketItems)
		sb := tx.tx.Bucket(bucketItemsBySKU)
		for _, it := range rows {
			if old := ib.Get([]byte(it.Code)); old != nil {
				updated++
				prev, err := decodeItem(it.Code, old)
				if err != nil {
					return fmt.Errorf("store: import items: %w", err)
				}
				if err := sb.Delete(skuKey(prev.SKU, prev.Code)); err != nil {
					return fmt.Errorf("store: import items: %w", err)
				}
			} else {
				added++
			}
			if err := ib.Put([]byte(it.Code), appendItem(nil, it)); err != nil {
				return fmt.Errorf("store: import items: %w", err)
			}
			if err := sb.Put(skuKey(it.SKU, it.Code), []byte(it.Name)); err != nil {
				return fmt.Errorf("store: import items: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return added, updated, nil
}

func checkItem(it Item) error {
	switch {
	case strings.TrimSpace(it.Code) == "":
		return fmt.Errorf("empty code: %w", ErrInvalid)
	case strings.TrimSpace(it.SKU) == "":
		return fmt.Errorf("code %q: empty sku: %w", it.Code, ErrInvalid)
	case len(it.Code) > MaxCodeLen:
		return fmt.Errorf("code longer than %d bytes: %w", MaxCodeLen, ErrInvalid)
	case len(it.SKU) > MaxSKULen:
		return fmt.Errorf("sku longer than %d bytes: %w", MaxSKULen, ErrInvalid)
	case len(it.Name) > MaxNameLen:
		return fmt.Errorf("name longer than %d bytes: %w", MaxNameLen, ErrInvalid)
	case len(it.Unit) > MaxUnitLen:
		return fmt.Errorf("unit longer than %d bytes: %w", MaxUnitLen, ErrInvalid)
	case !utf8.ValidString(it.Code + it.SKU + it.Name + it.Unit):
		return fmt.Errorf("text is not UTF-8: %w", ErrInvalid)
	case strings.ContainsRune(it.SKU, 0):
		return fmt.Errorf("sku holds a NUL byte: %w", ErrInvalid)
	}
	return nil
}

// Item returns the item with code, or an error wrapping ErrNotFound.
func (tx *Tx) Item(code string) (Item, error) {
	v := tx.tx.Bucket(bucketItems).Get([]byte(code))
	if v == nil || code == "" {
		return Item{}, fmt.Errorf("store: item %q: %w", code, ErrNotFound)
	}
	it, err := decodeItem(code, v)
	if err != nil {
		return Item{}, fmt.Errorf("store: item %q: %w", code, err)
	}
	return it, nil
}

// HasItems reports whether an item master exists (any item was imported).
func (tx *Tx) HasItems() bool {
	k, _ := tx.tx.Bucket(bucketItems).Cursor().First()
	return k != nil
}

// ItemCount returns how many codes the item master holds.
func (db *DB) ItemCount() (int, error) {
	var n int
	err := db.View(func(tx *Tx) error {
		n = tx.tx.Bucket(bucketItems).Stats().KeyN
		return nil
	})
	return n, err
}

// SKUName returns the name of sku in the item master (that of its first code
// in byte order when its codes disagree), "" if sku is unknown.
func (tx *Tx) SKUName(sku string) string {
	prefix := skuKey(sku, "")
	k, v := tx.tx.Bucket(bucketItemsBySKU).Cursor().Seek(prefix)
	if k == nil || !strings.HasPrefix(string(k), string(prefix)) {
		return ""
	}
	return string(v)
}

func skuKey(sku, code string) []byte {
	return append(append(append(make([]byte, 0, len(sku)+1+len(code)), sku...), 0), code...)
}

// appendItem encodes an item without its code (the key): three
// length-prefixed strings.
func appendItem(b []byte, it Item) []byte {
	for _, s := range [...]string{it.SKU, it.Name, it.Unit} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeItem(code string, b []byte) (Item, error) {
	it := Item{Code: code}
	for _, dst := range [...]*string{&it.SKU, &it.Name, &it.Unit} {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return Item{}, fmt.Errorf("malformed item record")
		}
		*dst = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	return it, nil
}
