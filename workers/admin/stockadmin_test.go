package admin_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

func TestAdminItemsImport(t *testing.T) {
	e := admintest.MustServer(t, token)
	c := mustClient(t, e.URL, token)
	ctx := testCtx(t)

	res, err := c.ImportItems(ctx, bytes.NewReader(gbk(t, "code,sku,name,unit\n6901234567892,SKU-1,矿泉水,瓶\n6901234567893,SKU-1,矿泉水,瓶\n")), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res, (admin.ImportResult{Added: 2}); got != want {
		t.Fatalf("import=%+v, want %+v", got, want)
	}
	xlsx := xlsxFile(t, [][]any{{"sku", "code", "name"}, {"SKU-1", "6901234567892", "矿泉水"}, {"SKU-2", "6901234567894", "可乐"}}, false)
	res, err = c.ImportItems(ctx, bytes.NewReader(xlsx), admin.FormatXLSX.ContentType())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res, (admin.ImportResult{Added: 1, Updated: 1}); got != want {
		t.Fatalf("xlsx import=%+v, want %+v", got, want)
	}
	var name string
	if err := e.DB.View(func(tx *store.Tx) error { name = tx.SKUName("SKU-1"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := name, "矿泉水"; got != want {
		t.Fatalf("SKU-1 name=%q, want %q (GBK decoded)", got, want)
	}

	tests := []struct {
		name, body, want string
	}{
		{name: "empty sku", body: "code,sku,name\nC1,S1,A\nC2,,B\n", want: "line 3: sku is empty"},
		{name: "code repeated", body: "code,sku,name\nC1,S1,A\nC2,S2,B\nC1,S3,C\n", want: "line 4: code C1 repeats line 2"},
		{name: "missing column", body: "code,name\nC1,A\n", want: "line 1: column sku is missing: want the header code,sku,name,[unit]"},
		{name: "unknown encoding", body: "code,sku,name\nC1,S1,A\nC2,S2,\xff\xfe\xff\n", want: "line 3: not UTF-8 or GB18030 text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ImportItems(ctx, strings.NewReader(tt.body), "")
			apiError(t, err, http.StatusBadRequest, tt.want)
			n, err := e.DB.ItemCount()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := n, 3; got != want {
				t.Fatalf("items=%d after a refused import, want %d", got, want)
			}
		})
	}
}

// postForm posts a multipart form with fields (a field name may repeat)
// and, when file is not nil, the file part expected, as a browser does.
func postForm(tb testing.TB, e *admintest.Env, fields [][2]string, file []byte) (int, string) {
	tb.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	if file != nil {
		w, _ := mw.CreateFormFile("expected", "book.csv")
		_, _ = w.Write(file)
	}
	_ = mw.Close()
	return do(tb, e, "POST", "/admin/stocktakes", mw.FormDataContentType(), body.String())
}

func TestAdminOpenScopedStocktakes(t *testing.T) {
	e := admintest.MustServer(t, token)
	c := mustClient(t, e.URL, token)
	ctx := testCtx(t)

	a, err := c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: "A zone", Locations: []string{"A-"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "ST0001" || !reflect.DeepEqual(a.Locations, []string{"A-"}) || a.State != "open" {
		t.Fatalf("opened %+v", a)
	}
	book := "location,sku,qty\nB-01,SKU-1,10\nB-02,SKU-2,5\n"
	b, err := c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: "B zone", Locations: []string{"B-"}, Expected: strings.NewReader(book)})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "ST0002" || b.ExpectedRows != 2 || !reflect.DeepEqual(b.Locations, []string{"B-"}) {
		t.Fatalf("opened %+v", b)
	}

	before, err := e.DB.Stocktakes()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		fields [][2]string
		file   []byte
		json   string // a JSON body instead of the form
		code   int
		want   string
	}{
		{name: "overlapping prefix", fields: [][2]string{{"name", "A0"}, {"locations", "A-0"}}, code: http.StatusConflict,
			want: `open stocktake "A0": ST0001 (A zone) is open and covers locations A-: close it first or choose other locations`},
		{name: "every location overlaps", json: `{"name":"all"}`, code: http.StatusConflict,
			want: `open stocktake "all": ST0001 (A zone) is open and covers locations A-: close it first or choose other locations`},
		{name: "second prefix overlaps", json: `{"name":"CB","locations":["C-","B-0"]}`, code: http.StatusConflict,
			want: `open stocktake "CB": ST0002 (B zone) is open and covers locations B-: close it first or choose other locations`},
		{name: "bad qty", fields: [][2]string{{"name", "C"}, {"locations", "C-"}}, file: []byte("location,sku,qty\nC-01,S1,1\nC-02,S2,many\n"),
			code: http.StatusBadRequest, want: `book stock: line 3: qty "many": want a whole number from 0 to 999999999`},
		{name: "row outside the scope", fields: [][2]string{{"name", "C"}, {"locations", "C-,D-"}}, file: []byte("location,sku,qty\nD-01,S1,1\nE-01,S2,2\n"),
			code: http.StatusBadRequest, want: `book stock: line 3: location "E-01" is outside the stocktake's locations`},
		{name: "unknown encoding", fields: [][2]string{{"name", "C"}, {"locations", "C-"}}, file: []byte("location,sku,qty\nC-01,S1,1\n\xff\xff\xff,S2,2\n"),
			code: http.StatusBadRequest, want: "book stock: line 3: not UTF-8 or GB18030 text"},
		{name: "missing column", fields: [][2]string{{"name", "C"}}, file: []byte("location,sku\nC-01,S1\n"),
			code: http.StatusBadRequest, want: "book stock: line 1: column qty is missing: want the header location,sku,qty"},
		{name: "book stock too large", fields: [][2]string{{"name", "C"}, {"locations", "C-"}},
			file: append([]byte("location,sku,qty\n"), bytes.Repeat([]byte("C-01,S1,1\n"), admin.MaxImportBytes/10)...), code: http.StatusRequestEntityTooLarge},
		{name: "empty name", fields: [][2]string{{"locations", "C-"}}, code: http.StatusBadRequest, want: "name is empty"},
		{name: "empty json name", json: `{"name":" ","locations":["C-"]}`, code: http.StatusBadRequest, want: "name is empty"},
		{name: "empty prefix", json: `{"name":"C","locations":["C-"," "]}`, code: http.StatusBadRequest, want: "locations: an empty prefix"},
		{name: "bad json", json: `{"name":`, code: http.StatusBadRequest},
		{name: "book stock as json", json: `{"name":"C","locations":["C-"],"expected":"location,sku,qty"}`, code: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			var body string
			if tt.json != "" {
				code, body = do(t, e, "POST", "/admin/stocktakes", "application/json", tt.json)
			} else {
				code, body = postForm(t, e, tt.fields, tt.file)
			}
			if got, want := code, tt.code; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if got := errorOf(t, body); tt.want != "" && got != tt.want {
				t.Fatalf("error=%q, want %q", got, tt.want)
			}
			after, err := e.DB.Stocktakes()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused open changed the stocktakes: %+v", after)
			}
		})
	}

	// The console's form: the prefixes as repeated fields, the book stock
	// as XLSX, an empty file input for none.
	xlsx := xlsxFile(t, [][]any{{"qty", "location", "sku"}, {7, "C-01", "SKU-9"}}, false)
	code, body := postForm(t, e, [][2]string{{"name", "C zone"}, {"locations", "C-"}, {"locations", "D-"}}, xlsx)
	if code != http.StatusCreated {
		t.Fatalf("form open: %d %s", code, body)
	}
	st := decode[admin.Stocktake](t, body)
	if st.ID != "ST0003" || st.ExpectedRows != 1 || !reflect.DeepEqual(st.Locations, []string{"C-", "D-"}) {
		t.Fatalf("form opened %+v", st)
	}
	v, err := e.DB.Variance(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.VarianceRow{{Location: "C-01", SKU: "SKU-9", Expected: 7, Difference: -7}}; !reflect.DeepEqual(v, want) {
		t.Fatalf("variance=%+v, want %+v", v, want)
	}
	code, body = postForm(t, e, [][2]string{{"name", "E zone"}, {"locations", "E-"}}, []byte{})
	if code != http.StatusCreated || decode[admin.Stocktake](t, body).ExpectedRows != 0 {
		t.Fatalf("form open without a file: %d %s", code, body)
	}

	list, err := c.Stocktakes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var scopes []string
	for _, st := range list {
		scopes = append(scopes, st.ID+":"+strings.Join(st.Locations, ",")+":"+st.State)
	}
	if got, want := scopes, []string{"ST0001:A-:open", "ST0002:B-:open", "ST0003:C-,D-:open", "ST0004:E-:open"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stocktakes=%v, want %v", got, want)
	}
}

func TestAdminVarianceExport(t *testing.T) {
	e := admintest.MustServer(t, token)
	c := mustClient(t, e.URL, token)
	ctx := testCtx(t)
	if _, err := c.ImportItems(ctx, strings.NewReader("code,sku,name\n111,SKU-1,水\n112,SKU-1,水\n222,SKU-2,=cmd\n"), ""); err != nil {
		t.Fatal(err)
	}
	st, err := c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: "V", Locations: []string{"A-"},
		Expected: strings.NewReader("location,sku,qty\nA-01,SKU-1,3\nA-01,SKU-2,5\nA-02,SKU-1,1\n")})
	if err != nil {
		t.Fatal(err)
	}
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "111", "A-01", "ev1")
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "112", "A-01", "ev2")
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "111", "A-01", "ev3")
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "111", "A-01", "ev4")
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "999", "A-03", "ev5")

	var out bytes.Buffer
	if err := c.ExportScans(ctx, st.ID, admin.ExportOptions{Variance: true}, &out); err != nil {
		t.Fatal(err)
	}
	want := "location,sku,name,expected,counted,difference\n" +
		"A-01,SKU-1,水,3,4,1\n" +
		"A-01,SKU-2,'=cmd,5,0,-5\n" +
		"A-02,SKU-1,水,1,0,-1\n" +
		"A-03,999,,0,1,1\n"
	if got := out.String(); got != want {
		t.Fatalf("variance csv:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := c.ExportScans(ctx, st.ID, admin.ExportOptions{Variance: true, Format: "json"}, &out); err != nil {
		t.Fatal(err)
	}
	rows := decode[[]map[string]any](t, out.String())
	if got, want := rows[1], map[string]any{"location": "A-01", "sku": "SKU-2", "name": "=cmd", "expected": 5.0, "counted": 0.0, "difference": -5.0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("json row 1=%v, want %v", got, want)
	}

	out.Reset()
	if err := c.ExportScans(ctx, st.ID, admin.ExportOptions{Variance: true, Format: "xlsx"}, &out); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	for _, cell := range []string{"D2", "E2", "F3"} {
		got, err := f.GetCellType(sheet, cell)
		if err != nil {
			t.Fatal(err)
		}
		if got != excelize.CellTypeNumber && got != excelize.CellTypeUnset { // unset: a number
			t.Fatalf("%s type=%v, want a number cell", cell, got)
		}
	}
	if v, _ := f.GetCellValue(sheet, "F3", excelize.Options{RawCellValue: true}); v != "-5" {
		t.Fatalf("F3=%q, want -5", v)
	}

	_, err = c.CloseStocktake(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, e, "GET", "/admin/stocktakes/"+st.ID+"/scans?summary=1&variance=1", "", "")
	if code != http.StatusBadRequest || errorOf(t, body) != "summary and variance: choose one" {
		t.Fatalf("summary and variance: %d %s", code, body)
	}
	code, body = do(t, e, "GET", "/admin/stocktakes/ST0099/scans?variance=1", "", "")
	if code != http.StatusNotFound {
		t.Fatalf("unknown stocktake: %d %s", code, body)
	}
	code, body = do(t, e, "GET", "/admin/stocktakes/"+st.ID+"/scans?variance=maybe", "", "")
	if code != http.StatusBadRequest {
		t.Fatalf("variance=maybe: %d %s", code, body)
	}
}

func TestAdminUsers(t *testing.T) {
	e := admintest.MustServer(t, token)
	c := mustClient(t, e.URL, token)
	ctx := testCtx(t)
	e.MustImport(t,
		store.Staff{EmployeeNo: "E001", Name: "张三", BindCode: "secret-1", CanScan: true},
		store.Staff{EmployeeNo: "E002", Name: "Li", BindCode: "secret-2"},
		store.Staff{EmployeeNo: "E003", Name: "Wang", BindCode: "secret-3", CanScan: true},
	)
	now := e.Clock.Now()
	if _, err := e.DB.Bind("oA", "E001", "", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.Bind("oB", "E002", "", now); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.SetBindingState("oB", store.StateSuspended); err != nil {
		t.Fatal(err)
	}
	err := e.DB.Update(func(tx *store.Tx) error {
		for range store.MaxBindFailures {
			if _, err := tx.CountEmployeeBindFailure("E003", now); err != nil {
				return err
			}
		}
		for range store.MaxOpenIDBindFailures {
			if _, err := tx.CountOpenIDBindFailure("oGuess", now); err != nil {
				return err
			}
		}
		_, err := tx.CountEmployeeBindFailure("E002", now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	code, body := do(t, e, "GET", "/admin/users", "", "")
	if code != http.StatusOK {
		t.Fatalf("users: %d %s", code, body)
	}
	if strings.Contains(body, "secret-") || strings.Contains(body, "bind_code") {
		t.Fatalf("the users list shows bind codes: %s", body)
	}
	users, err := c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	until := now.Add(store.BindLockout)
	want := []admin.User{
		{EmployeeNo: "E001", Name: "张三", CanScan: true, State: "active", OpenID: "oA", BoundAt: now},
		{EmployeeNo: "E002", Name: "Li", State: "suspended", OpenID: "oB", BoundAt: now, BindFailures: 1},
		{EmployeeNo: "E003", Name: "Wang", CanScan: true, State: "unbound", BindFailures: store.MaxBindFailures, LockedUntil: until},
	}
	for i := range users {
		users[i].BoundAt, users[i].LockedUntil = users[i].BoundAt.UTC(), users[i].LockedUntil.UTC()
	}
	for i := range want {
		want[i].BoundAt, want[i].LockedUntil = want[i].BoundAt.UTC(), want[i].LockedUntil.UTC()
		if want[i].BoundAt.Equal(time.Time{}) {
			want[i].BoundAt = time.Time{}
		}
	}
	if !reflect.DeepEqual(users, want) {
		t.Fatalf("users=%+v\nwant %+v", users, want)
	}

	u, err := c.UnlockUser(ctx, "E003")
	if err != nil {
		t.Fatal(err)
	}
	if u.EmployeeNo != "E003" || u.BindFailures != 0 || !u.LockedUntil.IsZero() {
		t.Fatalf("unlocked %+v", u)
	}
	if _, err := c.UnlockUser(ctx, "E003"); err != nil {
		t.Fatalf("unlock again: %v", err)
	}
	_, err = c.UnlockUser(ctx, "E999")
	apiError(t, err, http.StatusNotFound, "no employee E999 in the staff directory")
	lockouts, err := e.DB.BindLockouts(now)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range lockouts {
		left = append(left, l.EmployeeNo+l.OpenID)
	}
	if got, want := left, []string{"E002", "oGuess"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("counters left=%v, want %v", got, want)
	}

	if err := c.UnlockOpenID(ctx, "oGuess"); err != nil {
		t.Fatal(err)
	}
	if err := c.UnlockOpenID(ctx, "oGuess"); err != nil {
		t.Fatalf("unlock openid again: %v", err)
	}
	var locked bool
	if err := e.DB.View(func(tx *store.Tx) error {
		c, err := tx.OpenIDBindCounter("oGuess", now)
		locked = c.Locked(now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if locked {
		t.Fatal("oGuess still locked after unlock")
	}
}

func TestAdminStartOfDayIn(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	in := time.Date(2025, 3, 1, 23, 30, 0, 0, time.UTC) // 07:30 on 2 March in Shanghai, 00:30 in Berlin
	if got, want := admin.StartOfDayIn(in, berlin), time.Date(2025, 3, 1, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Berlin: %s, want %s", got.UTC(), want)
	}
	if got, want := admin.StartOfDayIn(in, nil), time.Date(2025, 3, 1, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("default: %s, want %s", got.UTC(), want)
	}
}
