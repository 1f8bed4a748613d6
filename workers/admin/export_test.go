package admin_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

const evil = `=HYPERLINK("http://evil.example","x")`

// openXLSX opens an XLSX file and returns it with its first sheet's name.
func openXLSX(tb testing.TB, data []byte) (*excelize.File, string) {
	tb.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("open xlsx: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, f.GetSheetList()[0]
}

// checkNumberCell fails unless cell holds the number want as a number cell.
func checkNumberCell(tb testing.TB, f *excelize.File, sheet, cell string, want float64) {
	tb.Helper()
	typ, err := f.GetCellType(sheet, cell)
	if err != nil {
		tb.Fatal(err)
	}
	if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		tb.Fatalf("%s: cell type %v, want a number", cell, typ)
	}
	raw, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		tb.Fatal(err)
	}
	if got, err := strconv.ParseFloat(raw, 64); err != nil || got != want {
		tb.Fatalf("%s=%q, want the number %v", cell, raw, want)
	}
}

// checkTimeCell fails unless cell is a date-time cell showing want's wall
// clock.
func checkTimeCell(tb testing.TB, f *excelize.File, sheet, cell string, want time.Time) {
	tb.Helper()
	raw, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		tb.Fatalf("%s=%q, want a date-time number", cell, raw)
	}
	got, err := excelize.ExcelDateToTime(serial, false)
	if err != nil {
		tb.Fatal(err)
	}
	wall := time.Date(want.Year(), want.Month(), want.Day(), want.Hour(), want.Minute(), want.Second(), 0, time.UTC)
	if d := got.Sub(wall); d < -time.Second || d > time.Second {
		tb.Fatalf("%s=%s, want %s", cell, got, wall)
	}
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		tb.Fatal(err)
	}
	style, err := f.GetStyle(id)
	if err != nil {
		tb.Fatal(err)
	}
	if style.CustomNumFmt == nil || !strings.Contains(*style.CustomNumFmt, "yy") || !strings.Contains(*style.CustomNumFmt, "hh:mm") {
		tb.Fatalf("%s: number format %v, want a date-time format", cell, style.CustomNumFmt)
	}
	shown, err := f.GetCellValue(sheet, cell)
	if err != nil {
		tb.Fatal(err)
	}
	if w := want.Format("2006-01-02 15:04:05"); shown != w {
		tb.Fatalf("%s shows %q, want %q", cell, shown, w)
	}
}

func TestAdminExportGuardsAndTypes(t *testing.T) {
	e := admintest.MustServer(t, token)
	st, err := e.DB.OpenStocktake("March", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.MustScan(t, st.ID, "oA", "E001", "QR_CODE", evil, "A-01", "ev1")
	e.MustScan(t, st.ID, "oA", "E001", "QR_CODE", "-5", "@A", "ev2")
	e.MustScan(t, st.ID, "oA", "E001", "EAN_13", "6901234567892", "\tB", "ev3")
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := e.Clock.Now().In(shanghai)

	t.Run("csv", func(t *testing.T) {
		resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?format=csv")
		if resp.code != http.StatusOK {
			t.Fatalf("status=%d (%s)", resp.code, resp.body)
		}
		if strings.HasPrefix(resp.body, "\ufeff") {
			t.Fatal("CSV starts with a byte-order mark")
		}
		recs, err := csv.NewReader(strings.NewReader(resp.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"stocktake_id", "employee_no", "openid", "code_type", "code", "location", "qty", "scanned_at", "event_id", "sku", "name"},
			{"ST0001", "E001", "oA", "QR_CODE", "'" + evil, "A-01", "1", "2025-03-01T10:00:00+08:00", "ev1", "'" + evil, ""},
			{"ST0001", "E001", "oA", "QR_CODE", "'-5", "'@A", "1", "2025-03-01T10:00:00+08:00", "ev2", "'-5", ""},
			{"ST0001", "E001", "oA", "EAN_13", "6901234567892", "'\tB", "1", "2025-03-01T10:00:00+08:00", "ev3", "6901234567892", ""},
		}
		if fmt.Sprint(recs) != fmt.Sprint(want) {
			t.Fatalf("csv=%q, want %q", recs, want)
		}
	})

	t.Run("summary csv", func(t *testing.T) {
		resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?summary=1")
		want := "location,code,qty\n'\tB,6901234567892,1\n'@A,'-5,1\nA-01,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",1\n"
		if resp.body != want {
			t.Fatalf("summary=%q, want %q", resp.body, want)
		}
	})

	t.Run("xlsx", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.URL+"/admin/stocktakes/"+st.ID+"/scans?format=XLSX", nil)
		req.Header.Set("Authorization", "Bearer "+e.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%d (%s)", resp.StatusCode, data)
		}
		if got, want := resp.Header.Get("Content-Type"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"; got != want {
			t.Fatalf("content-type=%q, want %q", got, want)
		}
		if got, want := resp.Header.Get("Content-Disposition"), `attachment; filename="ST0001-scans.xlsx"`; got != want {
			t.Fatalf("content-disposition=%q, want %q", got, want)
		}
		f, sheet := openXLSX(t, data)
		if got, want := len(f.GetSheetList()), 1; got != want {
			t.Fatalf("sheets=%d, want %d", got, want)
		}
		rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(rows), 4; got != want {
			t.Fatalf("rows=%d, want %d", got, want)
		}
		if got, want := strings.Join(rows[0], ","), "stocktake_id,employee_no,openid,code_type,code,location,qty,scanned_at,event_id,sku,name"; got != want {
			t.Fatalf("header=%q, want %q", got, want)
		}
		for cell, want := range map[string]string{"E2": "'" + evil, "E3": "'-5", "F3": "'@A", "E4": "6901234567892", "F4": "'\tB", "J2": "'" + evil} {
			got, err := f.GetCellValue(sheet, cell)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s=%q, want %q", cell, got, want)
			}
			if formula, _ := f.GetCellFormula(sheet, cell); formula != "" {
				t.Fatalf("%s has the formula %q", cell, formula)
			}
			if typ, _ := f.GetCellType(sheet, cell); typ == excelize.CellTypeUnset || typ == excelize.CellTypeNumber {
				t.Fatalf("%s: cell type %v, want text", cell, typ)
			}
		}
		for _, cell := range []string{"G2", "G3", "G4"} {
			checkNumberCell(t, f, sheet, cell, 1)
			checkTimeCell(t, f, sheet, "H"+cell[1:], at)
		}
	})

	t.Run("summary xlsx", func(t *testing.T) {
		resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?summary=1&format=xlsx")
		f, sheet := openXLSX(t, []byte(resp.body))
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"location", "code", "qty"}, {"'\tB", "6901234567892", "1"}, {"'@A", "'-5", "1"}, {"A-01", "'" + evil, "1"}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("rows=%q, want %q", rows, want)
		}
		checkNumberCell(t, f, sheet, "C4", 1)
	})

	t.Run("xlsx through the client", func(t *testing.T) {
		var buf bytes.Buffer
		if err := mustClient(t, e.URL, token).ExportScans(testCtx(t), st.ID, admin.ExportOptions{Format: "xlsx"}, &buf); err != nil {
			t.Fatal(err)
		}
		f, sheet := openXLSX(t, buf.Bytes())
		if got, _ := f.GetCellValue(sheet, "E2"); got != "'"+evil {
			t.Fatalf("E2=%q, want %q", got, "'"+evil)
		}
	})

	t.Run("json is data", func(t *testing.T) {
		resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?format=json")
		rows := decode[[]map[string]any](t, resp.body)
		if got, want := rows[0]["code"], any(evil); got != want {
			t.Fatalf("code=%v, want %v (JSON is not guarded)", got, want)
		}
		if got, want := rows[0]["qty"], any(1.0); got != want {
			t.Fatalf("qty=%v, want %v", got, want)
		}
	})

	t.Run("bad format", func(t *testing.T) {
		code, body := do(t, e, "GET", "/admin/stocktakes/"+st.ID+"/scans?format=xls", "", "")
		if got, want := code, http.StatusBadRequest; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		if got, want := errorOf(t, body), `format "xls": want csv, json or xlsx`; got != want {
			t.Fatalf("error=%q, want %q", got, want)
		}
	})
}

// varianceColumns are a variance export's columns, for the writer's tests.
var varianceColumns = []admin.ExportColumn{
	{Name: "location", Kind: admin.TextCell},
	{Name: "sku", Kind: admin.TextCell},
	{Name: "expected", Kind: admin.NumberCell},
	{Name: "counted", Kind: admin.NumberCell},
	{Name: "difference", Kind: admin.NumberCell},
	{Name: "at", Kind: admin.TimeCell},
}

func writeTable(tb testing.TB, format admin.Format, loc *time.Location, rows ...[]any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw, err := admin.NewTableWriter(&buf, format, varianceColumns, loc)
	if err != nil {
		tb.Fatal(err)
	}
	for _, row := range rows {
		if err := tw.Write(row...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestTableWriter(t *testing.T) {
	at := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]any{
		{"A-01", "-5", 7, 2, -5, at},
		{"+A", "S2", int64(0), 3, 3.5, time.Time{}},
	}

	if got, want := string(writeTable(t, admin.FormatCSV, ny, rows...)), ""+
		"location,sku,expected,counted,difference,at\n"+
		"A-01,'-5,7,2,-5,2025-02-28T21:00:00-05:00\n"+
		"'+A,S2,0,3,3.5,\n"; got != want {
		t.Fatalf("csv=%q, want %q", got, want)
	}
	if got, want := string(writeTable(t, admin.FormatJSON, nil, rows...)), "[\n"+
		`{"location":"A-01","sku":"-5","expected":7,"counted":2,"difference":-5,"at":"2025-03-01T02:00:00Z"},`+"\n"+
		`{"location":"+A","sku":"S2","expected":0,"counted":3,"difference":3.5,"at":null}`+"\n]\n"; got != want {
		t.Fatalf("json=%q, want %q", got, want)
	}
	if got, want := string(writeTable(t, admin.FormatJSON, nil)), "[]\n"; got != want {
		t.Fatalf("empty json=%q, want %q", got, want)
	}
	if got, want := string(writeTable(t, admin.FormatCSV, nil)), "location,sku,expected,counted,difference,at\n"; got != want {
		t.Fatalf("empty csv=%q, want %q", got, want)
	}

	f, sheet := openXLSX(t, writeTable(t, admin.FormatXLSX, ny, rows...))
	checkNumberCell(t, f, sheet, "E2", -5)
	checkNumberCell(t, f, sheet, "C3", 0)
	checkNumberCell(t, f, sheet, "E3", 3.5)
	checkTimeCell(t, f, sheet, "F2", at.In(ny))
	if got, _ := f.GetCellValue(sheet, "B2"); got != "'-5" {
		t.Fatalf("B2=%q, want %q", got, "'-5")
	}
	if got, _ := f.GetCellValue(sheet, "F3"); got != "" {
		t.Fatalf("F3=%q, want an empty cell for the zero time", got)
	}

	t.Run("wrong value types", func(t *testing.T) {
		for _, format := range []admin.Format{admin.FormatCSV, admin.FormatJSON, admin.FormatXLSX} {
			for _, row := range [][]any{
				{1, "S", 1, 1, 1, at},
				{"A", "S", "1", 1, 1, at},
				{"A", "S", 1, 1, 1, "2025-03-01"},
				{"A", "S", 1, 1, 1},
			} {
				tw, err := admin.NewTableWriter(io.Discard, format, varianceColumns, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := tw.Write(row...); err == nil {
					t.Fatalf("%s: row %v written, want an error", format, row)
				}
				tw.Abort()
			}
		}
	})
}

// TestAdminExportLargeXLSX streams a large stocktake as XLSX and reads every
// row back.
func TestAdminExportLargeXLSX(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	e := admintest.MustServer(t, token)
	st, err := e.DB.OpenStocktake("big", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	err = e.DB.Update(func(tx *store.Tx) error {
		for i := range n {
			if _, err := tx.RecordScan(store.Scan{StocktakeID: st.ID, OpenID: "oA", EmployeeNo: "E1", CodeType: "EAN_13",
				Code: strconv.Itoa(690000 + i), Qty: 1, ScannedAt: e.Clock.Now(), EventID: "ev" + strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans?format=xlsx")
	if resp.code != http.StatusOK {
		t.Fatalf("status=%d", resp.code)
	}
	f, sheet := openXLSX(t, []byte(resp.body))
	rows, err := f.Rows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count := 0
	for rows.Next() {
		row, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if count > 0 {
			if got, want := row[4], strconv.Itoa(690000+count-1); got != want {
				t.Fatalf("row %d code=%q, want %q", count+1, got, want)
			}
		}
		count++
	}
	if got, want := count, n+1; got != want {
		t.Fatalf("rows=%d, want %d", got, want)
	}
}

// BenchmarkTableWriterXLSX writes 10,000 and 100,000 scan rows as XLSX and
// reports the largest heap in use while writing (sampled every 5,000 rows and
// after the file is written): it stays about the same, the rows go to a
// temporary file.
func BenchmarkTableWriterXLSX(b *testing.B) {
	cols := []admin.ExportColumn{
		{Name: "stocktake_id", Kind: admin.TextCell}, {Name: "employee_no", Kind: admin.TextCell},
		{Name: "openid", Kind: admin.TextCell}, {Name: "code_type", Kind: admin.TextCell},
		{Name: "code", Kind: admin.TextCell}, {Name: "location", Kind: admin.TextCell},
		{Name: "qty", Kind: admin.NumberCell}, {Name: "scanned_at", Kind: admin.TimeCell},
		{Name: "event_id", Kind: admin.TextCell},
	}
	for _, n := range []int{10_000, 100_000, 300_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchmarkXLSX(b, cols, n) })
	}
}

func benchmarkXLSX(b *testing.B, cols []admin.ExportColumn, n int) {
	at := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	var peak uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		cw := &countingWriter{}
		tw, err := admin.NewTableWriter(cw, admin.FormatXLSX, cols, time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			err := tw.Write("ST0001", "E001", "oUser0001", "EAN_13", strconv.Itoa(6901234500000+i), "A-01", 1,
				at.Add(time.Duration(i)*time.Second), "oUser0001-"+strconv.Itoa(i))
			if err != nil {
				b.Fatal(err)
			}
			if i%5000 == 0 {
				sample()
			}
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		sample()
		size = cw.n
	}
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-heap")
	b.ReportMetric(float64(size)/(1<<20), "MiB-file")
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
