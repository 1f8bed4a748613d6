package admin_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

// TestAdminItemsImport imports an item master through the API: a bad row
// names its line and imports nothing.
func TestAdminItemsImport(t *testing.T) {
	e := admintest.MustServer(t, token)
	code, body := do(t, e, http.MethodPost, "/admin/items/import", "text/csv", "code,sku,name\n6901,S1,矿泉水\n,S2,可乐\n")
	if code != http.StatusBadRequest || errorOf(t, body) != "line 3: code is empty" {
		t.Fatalf("bad row: %d %s, want 400 line 3: code is empty", code, body)
	}
	if n, _ := e.DB.ItemCount(); n != 0 {
		t.Fatalf("a refused file imported %d items", n)
	}
	code, body = do(t, e, http.MethodPost, "/admin/items/import", "text/csv", "code,sku,name,unit\n6901,S1,矿泉水,瓶\n6902,S1,矿泉水,瓶\n")
	if got := decode[admin.ImportResult](t, body); code != http.StatusOK || got != (admin.ImportResult{Added: 2}) {
		t.Fatalf("import: %d %s, want 200 added 2", code, body)
	}
	if n, _ := e.DB.ItemCount(); n != 2 {
		t.Fatalf("items=%d, want 2", n)
	}
}

// TestAdminOpenWithBookStock opens stocktakes with scopes, as JSON and as a
// multipart form with a book stock, and exports their variance.
func TestAdminOpenWithBookStock(t *testing.T) {
	e := admintest.MustServer(t, token)
	open := func(fields map[string]string, expected string) (int, string) {
		t.Helper()
		fileField := ""
		if expected != "" {
			fileField = "expected"
		}
		ct, body := multipartBody(t, fields, fileField, "book.csv", expected)
		var buf bytes.Buffer
		buf.ReadFrom(body)
		return do(t, e, http.MethodPost, "/admin/stocktakes", ct, buf.String())
	}

	// A bad book-stock row: its line, nothing opened.
	code, body := open(map[string]string{"name": "A 区", "locations": "A-"}, "location,sku,qty\nA-01,S1,5\nB-01,S2,3\n")
	if code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, body), "line 3: ") {
		t.Fatalf("row outside the scope: %d %s, want 400 naming line 3", code, body)
	}
	code, body = open(map[string]string{"name": "A 区", "locations": "A-"}, "location,sku,qty\nA-01,S1,x\n")
	if code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, body), "line 2: qty") {
		t.Fatalf("bad qty: %d %s, want 400 naming line 2", code, body)
	}
	if list, _ := e.DB.Stocktakes(); len(list) != 0 {
		t.Fatalf("refused opens opened %d stocktakes", len(list))
	}

	code, body = open(map[string]string{"name": "A 区", "locations": "A-, A-0"}, "location,sku,qty\nA-01,S1,5\nA-02,S2,3\n")
	st := decode[admin.Stocktake](t, body)
	if code != http.StatusCreated || strings.Join(st.Locations, ",") != "A-,A-0" || st.ExpectedRows != 2 || st.State != "open" {
		t.Fatalf("open with book stock: %d %s", code, body)
	}
	// JSON with a scope that does not overlap: a second open stocktake.
	code, body = do(t, e, http.MethodPost, "/admin/stocktakes", "application/json", `{"name":"B 区","locations":["B-"]}`)
	if st2 := decode[admin.Stocktake](t, body); code != http.StatusCreated || strings.Join(st2.Locations, ",") != "B-" {
		t.Fatalf("open B-: %d %s", code, body)
	}
	// Overlapping A-: refused, naming the open one.
	code, body = do(t, e, http.MethodPost, "/admin/stocktakes", "application/json", `{"name":"A1","locations":["A-1"]}`)
	if code != http.StatusConflict || errorOf(t, body) != `stocktake `+st.ID+` "A 区" is already open: close it first` {
		t.Fatalf("overlapping open: %d %s", code, body)
	}

	// The variance: expected, counted, difference, sorted by location then sku.
	e.MustScan(t, st.ID, "oAlice", "E001", "EAN_13", "S1", "A-01", "ev-1")
	e.MustScan(t, st.ID, "oAlice", "E001", "EAN_13", "S9", "A-01", "ev-2")
	r := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?variance=1")
	want := "location,sku,name,expected,counted,difference\nA-01,S1,,5,1,-4\nA-01,S9,,0,1,1\nA-02,S2,,3,0,-3\n"
	if r.code != http.StatusOK || r.body != want {
		t.Fatalf("variance CSV: %d\n%s\nwant\n%s", r.code, r.body, want)
	}
	r = get(t, e, "/admin/stocktakes/"+st.ID+"/scans?variance=1&format=xlsx")
	f, err := excelize.OpenReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("variance XLSX: %d %v", r.code, err)
	}
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil || len(rows) != 4 || strings.Join(rows[1], ",") != "A-01,S1,,5,1,-4" {
		t.Fatalf("variance XLSX rows=%q, %v", rows, err)
	}
	if r := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?variance=1&summary=1"); r.code != http.StatusBadRequest {
		t.Fatalf("variance and summary: %d, want 400", r.code)
	}
	if r := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?variance=maybe"); r.code != http.StatusBadRequest {
		t.Fatalf("variance=maybe: %d, want 400", r.code)
	}
}
