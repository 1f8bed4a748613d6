package main

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// stocktakeRun is a whole wxscan (embedded NATS, bbolt in a temporary
// directory, the fake WeChat over HTTP) with the operator's CLI and two
// staff members' phones.
type stocktakeRun struct {
	m    *Main
	fake *fakewechat.Server
	base string
	sim  *wechatsim.Sim
	dir  string // where the operator keeps files
	// clock is the CreateTime of the next scan: one second apart, as a
	// person scans, so that the same code scanned twice is two scans.
	clock int64
}

const e2eAdminToken = "e2e-admin-token"

func startStocktakeRun(t *testing.T, timeZone ...string) *stocktakeRun {
	t.Helper()
	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	cfg := testConfig(t.TempDir())
	cfg.APIBase, cfg.OAuthBase, cfg.AdminToken = api.URL, api.URL, e2eAdminToken
	if len(timeZone) > 0 {
		cfg.TimeZone = timeZone[0]
	}
	m := MustRunMain(t, cfg)
	base := "http://" + m.HTTPAddr()
	return &stocktakeRun{m: m, fake: fake, base: base, sim: simFor(m, "plain"), dir: t.TempDir(), clock: time.Now().Unix() - 120}
}

// cli runs `wxscan args...` through run, as the binary does.
func (r *stocktakeRun) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, r.base, e2eAdminToken, args...)
}

// mustFail runs a command that must fail with one line on stderr holding
// every part of want.
func (r *stocktakeRun) mustFail(t *testing.T, want []string, args ...string) {
	t.Helper()
	res := r.cli(t, args...)
	if res.code != 1 || res.stdout != "" || strings.Count(res.stderr, "\n") != 1 {
		t.Fatalf("%v: exit %d, stdout %q, stderr %q: want exit 1 and one line on stderr", args, res.code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Fatalf("%v: stderr %q lacks %q", args, res.stderr, w)
		}
	}
}

func (r *stocktakeRun) file(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// push sends one push from openid and returns the chat reply it got: the
// passive reply, else the custom message the worker sent.
func (r *stocktakeRun) push(t *testing.T, p wechatsim.Push) string {
	t.Helper()
	req, err := r.sim.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return r.send(t, p.OpenID, req)
}

func (r *stocktakeRun) send(t *testing.T, openid string, req wechatsim.Request) string {
	t.Helper()
	sent := len(r.fake.Sent())
	res, err := r.sim.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("callback answered %d %q", res.Status, res.Body)
	}
	if res.Reply != "" {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(res.Reply); err != nil {
			t.Fatalf("reply %q: %v", res.Reply, err)
		}
		if el := doc.FindElement("/xml/Content"); el != nil {
			return el.Text()
		}
		t.Fatalf("reply without content: %q", res.Reply)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, msg := range r.fake.Sent()[sent:] {
			if msg.ToUser == openid {
				return msg.Content
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no reply to %s", openid)
	return ""
}

func (r *stocktakeRun) scan(t *testing.T, openid, result string) string {
	t.Helper()
	r.clock++
	return r.push(t, wechatsim.Push{Kind: "scan", OpenID: openid, Code: result, CreateTime: r.clock})
}

func (r *stocktakeRun) db() *store.DB { return r.m.workers.db }

// readCSV parses a CSV export.
func readCSV(t *testing.T, text string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, text)
	}
	return rows
}

// sameAsXLSX compares an XLSX export with the CSV export of the same rows
// cell by cell: texts and numbers alike, times as the CSV's RFC 3339 time
// shown in Shanghai.
func sameAsXLSX(t *testing.T, path string, csvRows [][]string) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if got, want := len(sheets), 1; got != want {
		t.Fatalf("sheets=%d, want %d", got, want)
	}
	rows, err := f.GetRows(sheets[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rows), len(csvRows); got != want {
		t.Fatalf("xlsx rows=%d, csv rows=%d", got, want)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	for i, row := range csvRows {
		for j, want := range row {
			got := ""
			if j < len(rows[i]) {
				got = rows[i][j]
			}
			if ts, err := time.Parse(time.RFC3339, want); i > 0 && err == nil {
				want = ts.In(shanghai).Format("2006-01-02 15:04:05")
			}
			if got != want {
				t.Fatalf("row %d column %s: xlsx %q, csv %q", i+1, csvRows[0][j], got, want)
			}
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			typ, err := f.GetCellType(sheets[0], cell)
			if err != nil {
				t.Fatal(err)
			}
			isNumber := typ == excelize.CellTypeUnset || typ == excelize.CellTypeNumber
			switch name := csvRows[0][j]; {
			case i == 0:
			case name == "qty" || name == "expected" || name == "counted" || name == "difference" || name == "scanned_at":
				if !isNumber {
					t.Fatalf("row %d %s: cell type %v, want a number or date-time cell", i+1, name, typ)
				}
			case want != "" && isNumber:
				t.Fatalf("row %d %s: %q is a number cell, want text", i+1, name, want)
			}
		}
	}
}

// TestStocktakeEndToEnd is issue 9 as the operator and two staff run it:
// items from a GBK CSV and an XLSX, two scoped stocktakes with book stock,
// binding through the pages, scans at two locations through the WeChat
// endpoint, an unknown code, a quantity, an undo delivered twice, a scan
// outside every scope, then the variance and the exports checked row by row.
func TestStocktakeEndToEnd(t *testing.T) {
	r := startStocktakeRun(t)
	ctx := context.Background()

	staff := r.file(t, "staff.csv", []byte("employee_no,name,bind_code,can_scan\nE001,张三,111111,是\nE002,李四,222222,是\n"))
	if got, want := r.cli(t, "users", "import", staff).mustOK(t).stdout, "added 2, updated 0\n"; got != want {
		t.Fatalf("users import: %q, want %q", got, want)
	}

	// The item master: a GBK CSV (as Excel on Chinese Windows saves it) and
	// an XLSX made here.
	gbkCSV, err := simplifiedchinese.GBK.NewEncoder().String("code,sku,name\n6901234567892,SKU-WATER,矿泉水\n6901234567893,SKU-WATER,矿泉水\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.cli(t, "items", "import", r.file(t, "items.csv", []byte(gbkCSV))).mustOK(t).stdout, "added 2, updated 0\n"; got != want {
		t.Fatalf("items import csv: %q, want %q", got, want)
	}
	x := excelize.NewFile()
	for i, row := range [][]any{{"name", "code", "sku", "unit"}, {"可乐", "6900000000011", "SKU-COLA", "瓶"}, {"矿泉水整箱", "6900000000028", "SKU-CASE", "箱"}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := x.SetSheetRow(x.GetSheetName(0), cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	xlsxPath := filepath.Join(r.dir, "items.xlsx")
	if err := x.SaveAs(xlsxPath); err != nil {
		t.Fatal(err)
	}
	x.Close()
	if got, want := r.cli(t, "items", "import", xlsxPath).mustOK(t).stdout, "added 2, updated 0\n"; got != want {
		t.Fatalf("items import xlsx: %q, want %q", got, want)
	}

	// Two scoped stocktakes with book stock; the id alone on the last line.
	bookA := r.file(t, "book-a.csv", []byte("location,sku,qty\nA-01,SKU-WATER,10\nA-01,SKU-COLA,4\nA-02,SKU-CASE,2\n"))
	bookB := r.file(t, "book-b.csv", []byte("location,sku,qty\nB-01,SKU-COLA,3\n"))
	for _, tt := range []struct{ name, prefix, book, id string }{{"A区", "A-", bookA, "ST0001"}, {"B区", "B-", bookB, "ST0002"}} {
		out := r.cli(t, "stocktake", "open", tt.name, "--locations", tt.prefix, "--expected", tt.book).mustOK(t).stdout
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if got, want := lines[len(lines)-1], tt.id; got != want {
			t.Fatalf("open %s: last line %q, want %q (%q)", tt.name, got, want, out)
		}
	}
	list := r.cli(t, "stocktake", "list").mustOK(t).stdout
	for _, want := range []string{"ST0001\tA区\topen\tA-\t3\t", "ST0002\tB区\topen\tB-\t1\t"} {
		if !strings.Contains(list, want) {
			t.Fatalf("stocktake list lacks %q:\n%s", want, list)
		}
	}

	// Two staff bind through the pages.
	phone := &wechatsim.Phone{Server: r.base}
	for openid, emp := range map[string][2]string{"oZhang": {"E001", "111111"}, "oLi": {"E002", "222222"}} {
		page, err := phone.Bind(ctx, openid, emp[0], emp[1])
		if err != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, "绑定成功") {
			t.Fatalf("bind %s: %d %v %s", openid, page.Status, err, page.Text())
		}
	}
	users := r.cli(t, "users", "list").mustOK(t).stdout
	for _, want := range []string{"E001\t张三\ttrue\tactive\toZhang\t", "E002\t李四\ttrue\tactive\toLi\t"} {
		if !strings.Contains(users, want) {
			t.Fatalf("users list lacks %q:\n%s", want, users)
		}
	}

	// 张三 counts at A-01.
	if reply := r.scan(t, "oZhang", "QR_CODE,LOC:A-01"); !strings.Contains(reply, "A-01") {
		t.Fatalf("location reply %q", reply)
	}
	for _, code := range []string{"EAN_13,6901234567892", "EAN_13,6901234567893"} {
		if reply := r.scan(t, "oZhang", code); !strings.Contains(reply, "矿泉水") {
			t.Fatalf("scan %s: reply %q does not name the item", code, reply)
		}
	}
	if reply := r.scan(t, "oZhang", "EAN_13,6900000000011"); !strings.Contains(reply, "可乐") {
		t.Fatalf("cola reply %q", reply)
	}
	if reply := r.push(t, wechatsim.Push{Kind: "text", OpenID: "oZhang", Content: "x12"}); !strings.Contains(reply, "12") || !strings.Contains(reply, "可乐") {
		t.Fatalf("x12 reply %q", reply)
	}
	if reply := r.scan(t, "oZhang", "EAN_13,6999999999999"); !strings.Contains(reply, "未登记") {
		t.Fatalf("unknown code reply %q, want 未登记", reply)
	}
	// 撤销, and WeChat delivers it again with the same MsgId: one undo.
	undo, err := r.sim.Build(wechatsim.Push{Kind: "text", OpenID: "oZhang", Content: "撤销", MsgID: 77000001})
	if err != nil {
		t.Fatal(err)
	}
	if reply := r.send(t, "oZhang", undo); !strings.Contains(reply, "6999999999999") {
		t.Fatalf("undo reply %q", reply)
	}
	if res, err := r.sim.Send(ctx, undo); err != nil || res.Status != http.StatusOK {
		t.Fatalf("retried undo: %+v %v", res, err)
	}

	// 李四 counts at A-02, then at B-01, then tries a location no
	// stocktake covers.
	r.scan(t, "oLi", "QR_CODE,LOC:A-02")
	r.scan(t, "oLi", "EAN_13,6900000000028")
	r.scan(t, "oLi", "QR_CODE,LOC:B-01")
	r.scan(t, "oLi", "EAN_13,6900000000011")
	r.scan(t, "oLi", "EAN_13,6900000000011")
	r.scan(t, "oLi", "QR_CODE,LOC:C-01")
	if reply := r.scan(t, "oLi", "EAN_13,6900000000011"); !strings.Contains(reply, "库位") {
		t.Fatalf("out-of-scope reply %q, want 库位", reply)
	}

	// The variance, row by row (the retried undo cancelled one scan only:
	// the cola's 12 stands).
	variance := map[string]string{
		"ST0001": "location,sku,name,expected,counted,difference\n" +
			"A-01,SKU-COLA,可乐,4,12,8\n" +
			"A-01,SKU-WATER,矿泉水,10,2,-8\n" +
			"A-02,SKU-CASE,矿泉水整箱,2,1,-1\n",
		"ST0002": "location,sku,name,expected,counted,difference\n" +
			"B-01,SKU-COLA,可乐,3,2,-1\n",
	}
	for id, want := range variance {
		got := r.cli(t, "scans", "export", "--stocktake", id, "--variance").mustOK(t).stdout
		if got != want {
			t.Fatalf("%s variance:\n%s\nwant:\n%s", id, got, want)
		}
		path := filepath.Join(r.dir, id+"-variance.xlsx")
		r.cli(t, "scans", "export", "--stocktake", id, "--variance", "--format", "xlsx", "--output", path).mustOK(t)
		sameAsXLSX(t, path, readCSV(t, want))
	}

	// The scans: cancelled ones left out, each with its sku and name.
	scansCSV := r.cli(t, "scans", "export", "--stocktake", "ST0001").mustOK(t).stdout
	rows := readCSV(t, scansCSV)
	if got, want := strings.Join(rows[0], ","), "stocktake_id,employee_no,openid,code_type,code,location,qty,scanned_at,event_id,sku,name"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, strings.Join([]string{row[1], row[4], row[5], row[6], row[9], row[10]}, " "))
	}
	want := []string{
		"E001 6901234567892 A-01 1 SKU-WATER 矿泉水",
		"E001 6901234567893 A-01 1 SKU-WATER 矿泉水",
		"E001 6900000000011 A-01 12 SKU-COLA 可乐",
		"E002 6900000000028 A-02 1 SKU-CASE 矿泉水整箱",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ST0001 scans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	path := filepath.Join(r.dir, "ST0001-scans.xlsx")
	if out := r.cli(t, "scans", "export", "--stocktake", "ST0001", "--format", "xlsx", "--output", path).mustOK(t).stdout; !strings.HasPrefix(out, "wrote "+path) {
		t.Fatalf("export --output printed %q", out)
	}
	sameAsXLSX(t, path, rows)
	summary := r.cli(t, "scans", "export", "--stocktake", "ST0002", "--summary").mustOK(t).stdout
	if got, want := summary, "location,code,qty\nB-01,6900000000011,2\n"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	r.mustFail(t, []string{"--summary and --variance: choose one"}, "scans", "export", "--stocktake", "ST0001", "--summary", "--variance")
}

// TestStocktakeEndToEndBadInput sends each bad input of issue 9 through the
// CLI and checks the answer and that nothing was stored.
func TestStocktakeEndToEndBadInput(t *testing.T) {
	r := startStocktakeRun(t)
	items := r.file(t, "items.csv", []byte("code,sku,name\n111,S1,水\n"))
	r.cli(t, "items", "import", items).mustOK(t)
	r.cli(t, "stocktake", "open", "A区", "--locations", "A-,D-").mustOK(t)
	stocktakes := func() int {
		list, err := r.db().Stocktakes()
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	t.Run("overlapping scope", func(t *testing.T) {
		r.mustFail(t, []string{"409 Conflict", "ST0001 (A区) is open"}, "stocktake", "open", "A0", "--locations", "A-0")
		r.mustFail(t, []string{"409 Conflict", "ST0001 (A区) is open"}, "stocktake", "open", "everything")
		if got, want := stocktakes(), 1; got != want {
			t.Fatalf("stocktakes=%d, want %d", got, want)
		}
	})
	t.Run("malformed book stock", func(t *testing.T) {
		book := r.file(t, "bad-book.csv", []byte("location,sku,qty\nB-01,S1,5\nB-02,S2,-3\n"))
		r.mustFail(t, []string{"400 Bad Request", "line 3", "qty"}, "stocktake", "open", "B区", "--locations", "B-", "--expected", book)
		outside := r.file(t, "outside.csv", []byte("location,sku,qty\nB-01,S1,5\nC-01,S2,3\n"))
		r.mustFail(t, []string{"400 Bad Request", "line 3", "C-01"}, "stocktake", "open", "B区", "--locations", "B-", "--expected", outside)
		if got, want := stocktakes(), 1; got != want {
			t.Fatalf("stocktakes=%d after a refused open, want %d", got, want)
		}
	})
	t.Run("unknown encoding", func(t *testing.T) {
		book := r.file(t, "utf16.csv", []byte("location,sku,qty\nB-01,S1,5\n\xff\xfeB\x00-\x00\n"))
		r.mustFail(t, []string{"400 Bad Request", "line 3: not UTF-8 or GB18030 text"}, "stocktake", "open", "B区", "--locations", "B-", "--expected", book)
		if got, want := stocktakes(), 1; got != want {
			t.Fatalf("stocktakes=%d after a refused open, want %d", got, want)
		}
	})
	t.Run("items bad row", func(t *testing.T) {
		bad := r.file(t, "bad-items.csv", []byte("code,sku,name\n222,S2,可乐\n333,,茶\n"))
		r.mustFail(t, []string{"wxscan items: 400 Bad Request: line 3: sku is empty"}, "items", "import", bad)
		n, err := r.db().ItemCount()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n, 1; got != want {
			t.Fatalf("items=%d after a refused import, want %d", got, want)
		}
	})
	t.Run("unlock unknown employee", func(t *testing.T) {
		r.mustFail(t, []string{"404 Not Found", "E999"}, "users", "unlock", "E999")
	})
}

// TestTimezoneSetting checks WXSCAN_TIMEZONE: the default, another zone,
// and a bad name refused at start with a message naming the variable.
func TestTimezoneSetting(t *testing.T) {
	env := map[string]string{
		"WXSCAN_APPID": testAppID, "WXSCAN_TOKEN": testToken, "WXSCAN_APPSECRET": "s",
		"WXSCAN_PUBLIC_URL": "https://wx.example.com",
	}
	parse := func(tz string) (*Main, error) {
		m := NewMain()
		m.Stderr = nopWriter{}
		m.Getenv = func(k string) string {
			if k == "WXSCAN_TIMEZONE" {
				return tz
			}
			return env[k]
		}
		return m, m.ParseFlags(context.Background(), nil)
	}
	for tz, want := range map[string]string{"": "Asia/Shanghai", "Europe/Berlin": "Europe/Berlin", "UTC": "UTC"} {
		m, err := parse(tz)
		if err != nil {
			t.Fatalf("%q: %v", tz, err)
		}
		loc, err := m.Config.Location()
		if err != nil || loc.String() != want {
			t.Fatalf("%q: location %v %v, want %s", tz, loc, err, want)
		}
	}
	for _, tz := range []string{"Mars/Olympus", "local", "+08:00"} {
		_, err := parse(tz)
		if err == nil || !strings.Contains(err.Error(), "WXSCAN_TIMEZONE") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%q: err=%v, want one line naming WXSCAN_TIMEZONE", tz, err)
		}
	}
}

// TestTimezoneReachesExports runs serve with WXSCAN_TIMEZONE=Europe/Berlin:
// export times carry Berlin's offset.
func TestTimezoneReachesExports(t *testing.T) {
	r := startStocktakeRun(t, "Europe/Berlin")
	r.cli(t, "stocktake", "open", "winter").mustOK(t)
	at := time.Date(2025, 12, 1, 23, 30, 0, 0, time.UTC)
	err := r.db().Update(func(tx *store.Tx) error {
		_, err := tx.RecordScan(store.Scan{StocktakeID: "ST0001", OpenID: "oA", EmployeeNo: "E001", CodeType: "QR_CODE",
			Code: "X1", Qty: 1, ScannedAt: at, EventID: "ev1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := r.cli(t, "scans", "export", "--stocktake", "ST0001").mustOK(t).stdout
	if !strings.Contains(out, ",2025-12-02T00:30:00+01:00,ev1,") {
		t.Fatalf("export does not show Berlin time:\n%s", out)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
