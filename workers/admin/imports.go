package admin

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/wxscan/wxscan/store"
)

// ItemColumns are the columns of an item master import (SPEC §9), in any
// order; unit may be left out.
var ItemColumns = []ImportColumn{
	{Name: "code", MaxBytes: store.MaxCodeLen},
	{Name: "sku", MaxBytes: store.MaxSKULen},
	{Name: "name", MaxBytes: store.MaxNameLen},
	{Name: "unit", Optional: true, MaxBytes: store.MaxUnitLen},
}

// ItemRow is one row of an item master import: the barcode Code belongs to
// the item SKU. It is the store's Item, ready for (*store.DB).ImportItems.
type ItemRow = store.Item

// ParseItems reads an item master, CSV or XLSX as ReadTable reads it, with
// the header columns ItemColumns. The first bad row fails the whole file
// with a 400 error wrapping a *LineError: an empty code or sku, a value over
// its length limit, a code already seen in the file ("line 5: code 690...
// repeats line 2"), or a sku given another name or unit than on its first
// line (one sku is one item, whichever of its codes is scanned). An
// over-long body fails with a *http.MaxBytesError (413).
func ParseItems(body io.Reader) ([]ItemRow, error) {
	var rows []ItemRow
	codes := map[string]int{} // code → line
	skus := map[string]int{}  // sku → index in rows of its first line
	err := ReadTable(body, ItemColumns, func(row Row) error {
		it := ItemRow{Code: row.Get("code"), SKU: row.Get("sku"), Name: row.Get("name"), Unit: row.Get("unit")}
		switch {
		case it.Code == "":
			return lineErrorf(row.Line, "code is empty")
		case it.SKU == "":
			return lineErrorf(row.Line, "sku is empty")
		}
		if first, dup := codes[it.Code]; dup {
			return lineErrorf(row.Line, "code %s repeats line %d", it.Code, first)
		}
		codes[it.Code] = row.Line
		if i, ok := skus[it.SKU]; ok {
			first := rows[i]
			if first.Name != it.Name {
				return lineErrorf(row.Line, "sku %s is named %q here and %q on line %d", it.SKU, it.Name, first.Name, codes[first.Code])
			}
			if first.Unit != it.Unit {
				return lineErrorf(row.Line, "sku %s has unit %q here and %q on line %d", it.SKU, it.Unit, first.Unit, codes[first.Code])
			}
		} else {
			skus[it.SKU] = len(rows)
		}
		rows = append(rows, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// ExpectedColumns are the columns of a book stock import (SPEC §9), in any
// order.
var ExpectedColumns = []ImportColumn{
	{Name: "location", MaxBytes: store.MaxLocationLen},
	{Name: "sku", MaxBytes: store.MaxSKULen},
	{Name: "qty", MaxBytes: MaxKeyBytes},
}

// MaxExpectedQty is the largest quantity a book stock row takes.
const MaxExpectedQty = 999_999_999

// ExpectedRow is one row of a book stock: the books expect Qty of SKU at
// Location. It is the store's Expected, ready for store.StocktakeSpec.
type ExpectedRow = store.Expected

// ParseExpected reads a book stock, CSV or XLSX as ReadTable reads it, with
// the header columns ExpectedColumns. location may be empty (books kept
// without locations, counted without scanning location codes). covers, if
// not nil, says whether a location is in the stocktake's scope (pass
// store.Stocktake{Locations: prefixes}.Covers). The first bad row fails the
// whole file with a 400 error wrapping a *LineError: an empty sku, a qty
// that is not a whole number from 0 to MaxExpectedQty, a value over its
// length limit, a location outside the scope, or a (location, sku) already
// seen in the file. An over-long body fails with a *http.MaxBytesError (413).
func ParseExpected(body io.Reader, covers func(location string) bool) ([]ExpectedRow, error) {
	var rows []ExpectedRow
	type key struct{ location, sku string }
	seen := map[key]int{} // → line
	err := ReadTable(body, ExpectedColumns, func(row Row) error {
		ex := ExpectedRow{Location: row.Get("location"), SKU: row.Get("sku")}
		if ex.SKU == "" {
			return lineErrorf(row.Line, "sku is empty")
		}
		qty, err := strconv.Atoi(row.Get("qty"))
		if err != nil || qty < 0 || qty > MaxExpectedQty || !isDigits(row.Get("qty")) {
			return lineErrorf(row.Line, "qty %q: want a whole number from 0 to %d", row.Get("qty"), MaxExpectedQty)
		}
		ex.Qty = qty
		if covers != nil && !covers(ex.Location) {
			return lineErrorf(row.Line, "location %q is outside the stocktake's locations", ex.Location)
		}
		k := key{ex.Location, ex.SKU}
		if first, dup := seen[k]; dup {
			return lineErrorf(row.Line, "location %q sku %s repeats line %d", ex.Location, ex.SKU, first)
		}
		seen[k] = row.Line
		rows = append(rows, ex)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// isDigits reports whether s is one or more ASCII digits (no sign).
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// importItems is POST /admin/items/import: the body is an item master, CSV
// or XLSX (see ParseItems), imported all or nothing. It answers
// {"added":N,"updated":M}.
func (s *server) importItems(w http.ResponseWriter, r *http.Request) error {
	res, err := ImportItems(s.cfg.DB, http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("admin imported items", "added", res.Added, "updated", res.Updated)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// ImportItems reads an item master file with ParseItems and imports it, all
// or nothing: what POST /admin/items/import does and what the console's
// form calls. A bad row is a 400 answer naming its line, and nothing of the
// file is imported.
func ImportItems(db *store.DB, body io.Reader) (ImportResult, error) {
	rows, err := ParseItems(body)
	if err != nil {
		return ImportResult{}, err
	}
	added, updated, err := db.ImportItems(rows)
	if errors.Is(err, store.ErrInvalid) {
		return ImportResult{}, explain(err, "%s", storeMessage(err, store.ErrInvalid))
	}
	if err != nil {
		return ImportResult{}, err
	}
	return ImportResult{Added: added, Updated: updated}, nil
}
