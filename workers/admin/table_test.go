package admin_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

// staffFile is a staff directory with Chinese names, columns out of order.
const staffFile = "Name,EMPLOYEE_NO, bind_code ,can_scan\r\n" +
	"张三,E001,111111,是\r\n" +
	"李四,E002,二二二二二二,否\r\n" +
	"\r\n" +
	"王五,E003,333333,1\r\n"

var staffRows = []store.Staff{
	{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true},
	{EmployeeNo: "E002", Name: "李四", BindCode: "二二二二二二", CanScan: false},
	{EmployeeNo: "E003", Name: "王五", BindCode: "333333", CanScan: true},
}

func gb18030(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func gbk(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// xlsxFile builds an XLSX file whose first sheet holds rows (row i+1 is
// rows[i]; a nil row is left out, so the sheet has a gap) and, when more is
// true, a second sheet that must be ignored.
func xlsxFile(tb testing.TB, rows [][]any, more bool) []byte {
	tb.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	for i, row := range rows {
		if row == nil {
			continue
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &row); err != nil {
			tb.Fatal(err)
		}
	}
	if more {
		if _, err := f.NewSheet("other"); err != nil {
			tb.Fatal(err)
		}
		if err := f.SetSheetRow("other", "A1", &[]any{"nonsense"}); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// lineOf returns the *LineError inside err, failing the test unless err is
// a 400 answer wrapping one.
func lineOf(tb testing.TB, err error) *admin.LineError {
	tb.Helper()
	var le *admin.LineError
	if !errors.As(err, &le) {
		tb.Fatalf("err=%v, want a *admin.LineError", err)
	}
	if err.Error() != le.Error() {
		tb.Fatalf("err=%q, its LineError says %q", err, le)
	}
	return le
}

func TestParseStaffEncodings(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{name: "utf-8", body: []byte(staffFile)},
		{name: "utf-8 with bom", body: []byte("\ufeff" + staffFile)},
		{name: "gb18030", body: gb18030(t, staffFile)},
		{name: "gbk", body: gbk(t, staffFile)},
		{name: "gb18030 with bom", body: gb18030(t, "\ufeff"+staffFile)},
		{name: "xlsx", body: xlsxFile(t, [][]any{
			{"Name", "EMPLOYEE_NO", " bind_code ", "can_scan"},
			{"张三", "E001", 111111, true},
			nil,
			{"李四", "E002", "二二二二二二", "否"},
			{"王五", " E003 ", "333333", 1},
		}, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "utf-8" && tt.name != "xlsx" && bytes.Equal(tt.body, []byte(staffFile)) {
				t.Fatal("the encoded file is the UTF-8 one")
			}
			rows, err := admin.ParseStaff(bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rows, staffRows) {
				t.Fatalf("rows=%+v, want %+v", rows, staffRows)
			}
		})
	}
}

func TestParseStaffBad(t *testing.T) {
	const header = "employee_no,name,bind_code,can_scan\n"
	long := strings.Repeat("长", 43) // 129 bytes
	tests := []struct {
		name string
		body []byte
		line int
		want string
	}{
		{name: "short bind_code", body: []byte(header + "E1,A,aaaaaa,1\nE2,B,aaaaaa,1\nE3,C,12345,1\n"), line: 4, want: "line 4: bind_code must be at least 6 characters"},
		{name: "short bind_code xlsx", line: 5, want: "line 5: bind_code must be at least 6 characters", body: xlsxFile(t, [][]any{
			{"employee_no", "name", "bind_code", "can_scan"},
			{"E1", "A", "aaaaaa", "yes"},
			nil,
			{"E2", "B", "bbbbbb", "yes"},
			{"E3", "C", 12345, "yes"},
		}, false)},
		{name: "name too long", body: []byte(header + "E1," + long + ",aaaaaa,1\n"), line: 2, want: "line 2: name is longer than 128 bytes"},
		{name: "name at its limit, bind_code over", body: []byte(header + "E1," + long[:126] + "," + strings.Repeat("x", 65) + ",1\n"), line: 2, want: "line 2: bind_code is longer than 64 bytes"},
		{name: "employee_no too long", body: []byte(header + strings.Repeat("E", 65) + ",A,aaaaaa,1\n"), line: 2, want: "line 2: employee_no is longer than 64 bytes"},
		{name: "bad can_scan xlsx", line: 2, want: `line 2: can_scan "maybe"`, body: xlsxFile(t, [][]any{
			{"employee_no", "name", "bind_code", "can_scan"},
			{"E1", "A", "aaaaaa", "maybe"},
		}, false)},
		{name: "value beyond the header xlsx", line: 3, want: "line 3: a value in column 5", body: xlsxFile(t, [][]any{
			{"employee_no", "name", "bind_code", "can_scan"},
			{"E1", "A", "aaaaaa", "yes"},
			{"E2", "B", "bbbbbb", "yes", "x"},
		}, false)},
		{name: "unknown column xlsx", line: 1, want: `line 1: unknown column "dept"`, body: xlsxFile(t, [][]any{
			{"employee_no", "name", "bind_code", "can_scan", "dept"},
		}, false)},
		{name: "header on row 3 xlsx", line: 3, want: "line 3: column can_scan is missing", body: xlsxFile(t, [][]any{
			nil, nil, {"employee_no", "name", "bind_code"},
		}, false)},
		{name: "duplicate xlsx", line: 4, want: "line 4: employee_no E1 repeats line 2", body: xlsxFile(t, [][]any{
			{"employee_no", "name", "bind_code", "can_scan"},
			{"E1", "A", "aaaaaa", "yes"},
			{"E2", "B", "bbbbbb", "yes"},
			{"E1", "C", "cccccc", "yes"},
		}, false)},
		{name: "not text", body: []byte(header + "E1,A,aaaaaa,1\nE2,\xff\xfe,bbbbbb,1\n"), line: 3, want: "line 3: not UTF-8 or GB18030 text"},
		{name: "gb18030 then a bad byte", body: append(gb18030(t, header+"E1,张三,aaaaaa,1\nE2,李四,bbbbbb,1\n"), "E3,\xff,cccccc,1\n"...), line: 4, want: "line 4: not UTF-8 or GB18030 text"},
		{name: "utf-8 then a bad byte", body: []byte(header + "E1,张三,aaaaaa,1\nE2,李四,bbbbbb,1\nE3,\xff,cccccc,1\n"), line: 4, want: "line 4: not UTF-8 or GB18030 text"},
		{name: "truncated gb18030 character", body: append(gb18030(t, header+"E1,张三,aaaaaa,1\n"), "E2,\xd5\n"...), line: 3, want: "line 3: not UTF-8 or GB18030 text"},
		{name: "utf-16", body: []byte("\xff\xfee\x00m\x00p\x00\n\x00"), line: 1, want: "line 1: not UTF-8 or GB18030 text"},
		{name: "nul byte", body: []byte(header + "E1,A\x00,aaaaaa,1\n"), line: 2, want: "line 2: not UTF-8 or GB18030 text"},
		{name: "broken xlsx", body: []byte("PK\x03\x04 this is no zip"), line: 0, want: "not a readable XLSX file"},
		{name: "xls", body: []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00"), line: 0, want: "an XLS (Excel 97-2003) or password-protected file"},
		{name: "blank rows only", body: []byte(",,,\n\n ,\n"), line: 0, want: "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := admin.ParseStaff(bytes.NewReader(tt.body))
			if err == nil {
				t.Fatalf("rows=%+v, want an error", rows)
			}
			if rows != nil {
				t.Fatalf("rows=%+v returned with the error", rows)
			}
			le := lineOf(t, err)
			if got, want := le.Line, tt.line; got != want {
				t.Fatalf("line=%d, want %d (%v)", got, want, err)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("err=%q, want it to start with %q", got, tt.want)
			}
		})
	}
}

func TestParseStaffTooLarge(t *testing.T) {
	body := io.MultiReader(strings.NewReader("employee_no,name,bind_code,can_scan\n"),
		bytes.NewReader(bytes.Repeat([]byte("E1,A,aaaaaa,1\n"), admin.MaxImportBytes/14+1)))
	_, err := admin.ParseStaff(body)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		t.Fatalf("err=%v, want a *http.MaxBytesError", err)
	}
}

// TestAdminImportXLSXAndGB18030 imports through the API: an XLSX file, then a
// GB18030 CSV; a file with one bad row imports nothing.
func TestAdminImportXLSXAndGB18030(t *testing.T) {
	e := admintest.MustServer(t, token)
	xlsx := xlsxFile(t, [][]any{
		{"employee_no", "name", "bind_code", "can_scan"},
		{"E001", "张三", "111111", "是"},
		{"E002", "李四", "222222", "no"},
	}, false)
	code, body := do(t, e, "POST", "/admin/users/import", "application/octet-stream", string(xlsx))
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := decode[counts](t, body), (counts{Added: 2}); got != want {
		t.Fatalf("counts=%+v, want %+v", got, want)
	}
	gb := gb18030(t, "employee_no,name,bind_code,can_scan\nE002,李四,222222,是\nE003,王五,333333,否\n")
	code, body = do(t, e, "POST", "/admin/users/import", "text/csv", string(gb))
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := decode[counts](t, body), (counts{Added: 1, Updated: 1}); got != want {
		t.Fatalf("counts=%+v, want %+v", got, want)
	}
	want := []store.Staff{
		{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E002", Name: "李四", BindCode: "222222", CanScan: true},
		{EmployeeNo: "E003", Name: "王五", BindCode: "333333", CanScan: false},
	}
	if got, err := e.DB.StaffList(); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("staff=%+v (%v), want %+v", got, err, want)
	}

	bad := xlsxFile(t, [][]any{
		{"employee_no", "name", "bind_code", "can_scan"},
		{"E004", "赵六", "444444", "是"},
		{"E005", "钱七", "555", "是"},
	}, false)
	code, body = do(t, e, "POST", "/admin/users/import", "application/octet-stream", string(bad))
	if got, want := code, http.StatusBadRequest; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := errorOf(t, body), "line 3: bind_code must be at least 6 characters"; got != want {
		t.Fatalf("error=%q, want %q", got, want)
	}
	if got, err := e.DB.StaffList(); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("staff after a failed import=%+v (%v), want %+v", got, err, want)
	}
}

func TestParseItems(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		tests := []struct {
			name string
			body []byte
			want []admin.ItemRow
		}{
			{name: "without unit", body: []byte("sku,code,name\nS1,6901234567892,可乐\nS1,6901234567893,可乐\nS2,6901234567894,雪碧\n"), want: []admin.ItemRow{
				{Code: "6901234567892", SKU: "S1", Name: "可乐"},
				{Code: "6901234567893", SKU: "S1", Name: "可乐"},
				{Code: "6901234567894", SKU: "S2", Name: "雪碧"},
			}},
			{name: "with unit gb18030", body: gb18030(t, "code,sku,name,unit\n6901234567892,S1,可乐,瓶\n"), want: []admin.ItemRow{
				{Code: "6901234567892", SKU: "S1", Name: "可乐", Unit: "瓶"},
			}},
			{name: "xlsx with a numeric barcode", body: xlsxFile(t, [][]any{
				{"code", "sku", "name", "unit"},
				{6901234567892, "S1", "可乐", "瓶"},
				{"0012345", "S2", "雪碧", ""},
			}, false), want: []admin.ItemRow{
				{Code: "6901234567892", SKU: "S1", Name: "可乐", Unit: "瓶"},
				{Code: "0012345", SKU: "S2", Name: "雪碧"},
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rows, err := admin.ParseItems(bytes.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(rows, tt.want) {
					t.Fatalf("rows=%+v, want %+v", rows, tt.want)
				}
			})
		}
	})
	const header = "code,sku,name\n"
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "code repeated", body: header + "690,S1,A\n691,S2,B\n\n690,S3,C\n", want: "line 5: code 690 repeats line 2"},
		{name: "code empty", body: header + "690,S1,A\n,S2,B\n", want: "line 3: code is empty"},
		{name: "sku empty", body: header + "690,,A\n", want: "line 2: sku is empty"},
		{name: "sku renamed", body: header + "690,S1,可乐\n691,S1,雪碧\n", want: `line 3: sku S1 is named "雪碧" here and "可乐" on line 2`},
		{name: "code too long", body: header + strings.Repeat("6", 257) + ",S1,A\n", want: "line 2: code is longer than 256 bytes"},
		{name: "sku too long", body: header + "690," + strings.Repeat("S", 65) + ",A\n", want: "line 2: sku is longer than 64 bytes"},
		{name: "unknown column", body: "code,sku,name,price\n690,S1,A,3\n", want: `line 1: unknown column "price"`},
		{name: "missing column", body: "code,name\n690,A\n", want: "line 1: column sku is missing: want the header code,sku,name,[unit]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := admin.ParseItems(strings.NewReader(tt.body))
			if err == nil {
				t.Fatalf("rows=%+v, want an error", rows)
			}
			lineOf(t, err)
			if got := err.Error(); got != tt.want && !strings.HasPrefix(got, tt.want) {
				t.Fatalf("err=%q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseExpected(t *testing.T) {
	rows, err := admin.ParseExpected(bytes.NewReader(xlsxFile(t, [][]any{
		{"SKU", "Location", "Qty"},
		{"S1", "A-01", 12},
		{"S2", "A-01", "0"},
		{"S1", "A-02", 3},
		{"S1", "", 7},
	}, false)), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []admin.ExpectedRow{
		{Location: "A-01", SKU: "S1", Qty: 12},
		{Location: "A-01", SKU: "S2", Qty: 0},
		{Location: "A-02", SKU: "S1", Qty: 3},
		{Location: "", SKU: "S1", Qty: 7},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows=%+v, want %+v", rows, want)
	}

	const header = "location,sku,qty\n"
	scope := store.Stocktake{Locations: []string{"A-", "B-"}}
	tests := []struct {
		name   string
		body   string
		covers func(string) bool
		want   string
	}{
		{name: "outside the scope", body: header + "A-01,S1,1\nB-01,S1,1\n\nC-01,S1,1\n", covers: scope.Covers, want: `line 5: location "C-01" is outside the stocktake's locations`},
		{name: "no location in a scope", body: header + "A-01,S1,1\n,S1,1\n", covers: scope.Covers, want: `line 3: location "" is outside the stocktake's locations`},
		{name: "negative", body: header + "A-01,S1,1\nA-01,S2,-1\n", want: `line 3: qty "-1": want a whole number from 0 to 999999999`},
		{name: "fraction", body: header + "A-01,S1,1.5\n", want: `line 2: qty "1.5"`},
		{name: "plus sign", body: header + "A-01,S1,+5\n", want: `line 2: qty "+5"`},
		{name: "empty qty", body: header + "A-01,S1,\n", want: `line 2: qty ""`},
		{name: "word", body: header + "A-01,S1,ten\n", want: `line 2: qty "ten"`},
		{name: "too big", body: header + "A-01,S1,1000000000\n", want: `line 2: qty "1000000000"`},
		{name: "repeated", body: header + "A-01,S1,1\nA-02,S1,1\nA-01,S1,2\n", want: `line 4: location "A-01" sku S1 repeats line 2`},
		{name: "sku empty", body: header + "A-01,,1\n", want: "line 2: sku is empty"},
		{name: "location too long", body: header + strings.Repeat("L", 65) + ",S1,1\n", want: "line 2: location is longer than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := admin.ParseExpected(strings.NewReader(tt.body), tt.covers)
			if err == nil {
				t.Fatalf("rows=%+v, want an error", rows)
			}
			lineOf(t, err)
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("err=%q, want it to start with %q", got, tt.want)
			}
		})
	}
}

// FuzzParseStaff checks that any body either fails with an error naming a
// line or the file, or gives rows that keep every rule.
func FuzzParseStaff(f *testing.F) {
	f.Add([]byte(staffFile))
	f.Add([]byte("\ufeff" + staffFile))
	f.Add(gb18030(f, staffFile))
	f.Add([]byte("employee_no,name,bind_code,can_scan\nE1,\"a\nb\",aaaaaa,1\n"))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, err := admin.ParseStaff(bytes.NewReader(body))
		if err != nil {
			var le *admin.LineError
			if !errors.As(err, &le) {
				t.Fatalf("err=%v is not a *admin.LineError", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.EmployeeNo == "" || len(r.EmployeeNo) > admin.MaxKeyBytes || len(r.Name) > admin.MaxNameBytes ||
				len([]rune(r.BindCode)) < store.MinBindCodeLen || len(r.BindCode) > admin.MaxKeyBytes || seen[r.EmployeeNo] {
				t.Fatalf("row %+v breaks a rule", r)
			}
			seen[r.EmployeeNo] = true
		}
	})
}
