package admin_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

const token = "s3cret-admin-token"

// do sends one request to e's admin API with the right token and returns the
// status and body.
func do(tb testing.TB, e *admintest.Env, method, path, contentType, body string) (int, string) {
	tb.Helper()
	return doAuth(tb, e, method, path, contentType, body, "Bearer "+e.Token)
}

func doAuth(tb testing.TB, e *admintest.Env, method, path, contentType, body, auth string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// errorOf decodes an error answer, failing unless it is one.
func errorOf(tb testing.TB, body string) string {
	tb.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		tb.Fatalf("body %q is not a JSON error", body)
	}
	if strings.Contains(e.Error, "\n") {
		tb.Fatalf("error %q is more than one line", e.Error)
	}
	return e.Error
}

func decode[T any](tb testing.TB, body string) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func TestAdminAuth(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		e := admintest.MustServer(t, "")
		for _, path := range []string{"/admin/status", "/admin/stocktakes", "/admin/nope"} {
			req, _ := http.NewRequest("GET", e.URL+path, nil)
			req.Header.Set("Authorization", "Bearer anything")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusNotFound; got != want {
				t.Fatalf("%s: status=%d, want %d", path, got, want)
			}
			if got, want := resp.Header.Get(admin.OffHeader), "off"; got != want {
				t.Fatalf("%s: %s=%q, want %q", path, admin.OffHeader, got, want)
			}
		}
	})

	e := admintest.MustServer(t, token)
	tests := []struct {
		name string
		auth string
		want int
	}{
		{name: "missing", auth: "", want: http.StatusUnauthorized},
		{name: "wrong", auth: "Bearer nope", want: http.StatusUnauthorized},
		{name: "prefix of the token", auth: "Bearer " + token[:5], want: http.StatusUnauthorized},
		{name: "basic scheme", auth: "Basic " + token, want: http.StatusUnauthorized},
		{name: "right", auth: "Bearer " + token, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := doAuth(t, e, "GET", "/admin/stocktakes", "", "", tt.auth)
			if got, want := code, tt.want; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if code != http.StatusOK {
				errorOf(t, body)
			}
		})
	}

	t.Run("unknown endpoint", func(t *testing.T) {
		code, body := do(t, e, "GET", "/admin/nope", "", "")
		if got, want := code, http.StatusNotFound; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		errorOf(t, body)
	})
	t.Run("wrong method", func(t *testing.T) {
		code, body := do(t, e, "PUT", "/admin/stocktakes", "", "")
		if got, want := code, http.StatusMethodNotAllowed; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		errorOf(t, body)
	})
}

type counts struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
}

func TestAdminImport(t *testing.T) {
	e := admintest.MustServer(t, token)
	good := "\ufeffname, employee_no ,bind_code,can_scan\n" +
		"张三,E001,111111,是\n" +
		"Li Si , E002 ,222222,no\n" +
		"\n" +
		"Wang,E003,333333,\n"

	code, body := do(t, e, "POST", "/admin/users/import", "text/csv", good)
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := decode[counts](t, body), (counts{Added: 3}); got != want {
		t.Fatalf("counts=%+v, want %+v", got, want)
	}
	staff, err := e.DB.StaffList()
	if err != nil {
		t.Fatal(err)
	}
	wantStaff := []store.Staff{
		{EmployeeNo: "E001", Name: "张三", BindCode: "111111", CanScan: true},
		{EmployeeNo: "E002", Name: "Li Si", BindCode: "222222", CanScan: false},
		{EmployeeNo: "E003", Name: "Wang", BindCode: "333333", CanScan: false},
	}
	if !reflect.DeepEqual(staff, wantStaff) {
		t.Fatalf("staff=%+v, want %+v", staff, wantStaff)
	}

	// Re-import: one changed, one new, the rest unchanged.
	code, body = do(t, e, "POST", "/admin/users/import", "text/csv",
		"employee_no,name,bind_code,can_scan\nE001,张三,111111,yes\nE002,Li Si,999999,Y\nE004,Zhao,444444,1\n")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := decode[counts](t, body), (counts{Added: 1, Updated: 1}); got != want {
		t.Fatalf("counts=%+v, want %+v", got, want)
	}
	before, err := e.DB.StaffList()
	if err != nil {
		t.Fatal(err)
	}

	const header = "employee_no,name,bind_code,can_scan\n"
	tests := []struct {
		name string
		body string
		want string // the error's start
	}{
		{name: "empty bind_code", body: header + "E010,A,aaaaaa,true\nE011,B,bbbbbb,true\nE012,C,,true\n", want: "line 4: bind_code is empty"},
		{name: "empty employee_no", body: header + "E010,A,aaaaaa,true\n ,B,bbbbbb,true\n", want: "line 3: employee_no is empty"},
		{name: "bad can_scan", body: header + "E010,A,aaaaaa,maybe\n", want: `line 2: can_scan "maybe"`},
		{name: "too few fields", body: header + "E010,A,aaaaaa,true\nE011,B,2\n", want: "line 3: 3 fields, want 4"},
		{name: "too many fields", body: header + "E010,A,aaaaaa,true,x\n", want: "line 2: 5 fields, want 4"},
		{name: "duplicate employee_no", body: header + "E010,A,aaaaaa,true\nE011,B,bbbbbb,true\nE010,C,cccccc,false\n", want: "line 4: employee_no E010 repeats line 2"},
		{name: "blank line counts", body: header + "E010,A,aaaaaa,true\n\nE011,B,,true\n", want: "line 4: bind_code is empty"},
		{name: "bad quote", body: header + "E010,A,aaaaaa,true\nE011,\"B,2,true\n", want: "line 3"},
		{name: "missing column", body: "employee_no,name,bind_code\nE010,A,1\n", want: "line 1: column can_scan is missing"},
		{name: "unknown column", body: "employee_no,name,bind_code,can_scan,dept\nE010,A,aaaaaa,true,x\n", want: `line 1: unknown column "dept"`},
		{name: "empty file", body: "", want: "empty file"},
		{name: "short bind_code", body: header + "E010,A,aaaaaa,true\nE011,B,12345,true\n", want: "line 3: bind_code must be at least 6 characters"},
		{name: "not text", body: header + "E010,A,aaaaaa,true\nE011,\xff,bbbbbb,true\n", want: "line 3: not UTF-8 or GB18030 text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, e, "POST", "/admin/users/import", "text/csv", tt.body)
			if got, want := code, http.StatusBadRequest; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if got := errorOf(t, body); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("error=%q, want it to start with %q", got, tt.want)
			}
			after, err := e.DB.StaffList()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, before) {
				t.Fatalf("directory changed by a failed import: %+v", after)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(header)
		for i := 0; b.Len() <= admin.MaxImportBytes; i++ {
			fmt.Fprintf(&b, "E%07d,Name,123456,true\n", i)
		}
		big := b.String()
		code, body := do(t, e, "POST", "/admin/users/import", "text/csv", big)
		if got, want := code, http.StatusRequestEntityTooLarge; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		errorOf(t, body)
	})
}

func TestAdminStocktakes(t *testing.T) {
	e := admintest.MustServer(t, token)
	steps := []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantErr  string // part of the error message
	}{
		{name: "open", method: "POST", path: "/admin/stocktakes", body: `{"name":"March count"}`, wantCode: http.StatusCreated},
		{name: "open while open", method: "POST", path: "/admin/stocktakes", body: `{"name":"second"}`, wantCode: http.StatusConflict, wantErr: `ST0001 (March count) is open and covers every location`},
		{name: "open empty name", method: "POST", path: "/admin/stocktakes", body: `{"name":"  "}`, wantCode: http.StatusBadRequest, wantErr: "name is empty"},
		{name: "open bad json", method: "POST", path: "/admin/stocktakes", body: `{`, wantCode: http.StatusBadRequest},
		{name: "close unknown", method: "POST", path: "/admin/stocktakes/ST0099/close", wantCode: http.StatusNotFound, wantErr: "stocktake ST0099 not found"},
		{name: "close", method: "POST", path: "/admin/stocktakes/ST0001/close", wantCode: http.StatusOK},
		{name: "close again", method: "POST", path: "/admin/stocktakes/ST0001/close", wantCode: http.StatusConflict, wantErr: "ST0001 is already closed"},
		{name: "open next", method: "POST", path: "/admin/stocktakes", body: `{"name":"April"}`, wantCode: http.StatusCreated},
		{name: "export unknown", method: "GET", path: "/admin/stocktakes/ST0099/scans", wantCode: http.StatusNotFound, wantErr: "stocktake ST0099 not found"},
	}
	for _, tt := range steps {
		code, body := do(t, e, tt.method, tt.path, "application/json", tt.body)
		if got, want := code, tt.wantCode; got != want {
			t.Fatalf("%s: status=%d, want %d (%s)", tt.name, got, want, body)
		}
		if code >= 400 {
			if got := errorOf(t, body); !strings.Contains(got, tt.wantErr) {
				t.Fatalf("%s: error=%q, want it to contain %q", tt.name, got, tt.wantErr)
			}
		}
	}

	code, body := do(t, e, "GET", "/admin/stocktakes", "", "")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	list := decode[[]map[string]any](t, body)
	if got, want := len(list), 2; got != want {
		t.Fatalf("stocktakes=%d, want %d: %s", got, want, body)
	}
	for i, want := range []map[string]any{
		{"id": "ST0001", "name": "March count", "state": "closed", "scans": 0.0, "opened_at": "2025-03-01T02:00:00Z", "closed_at": "2025-03-01T02:00:00Z"},
		{"id": "ST0002", "name": "April", "state": "open", "scans": 0.0, "opened_at": "2025-03-01T02:00:00Z"},
	} {
		if !reflect.DeepEqual(list[i], want) {
			t.Fatalf("stocktake %d=%v, want %v", i, list[i], want)
		}
	}
}

func TestAdminExport(t *testing.T) {
	e := admintest.MustServer(t, token)
	st, err := e.DB.OpenStocktake("March", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.MustScan(t, st.ID, "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev1")
	e.MustScan(t, st.ID, "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev2")
	e.MustScan(t, st.ID, "oB", "E002", "QR_CODE", "a,b \"c\"", "", "ev3")

	tests := []struct {
		name  string
		query string
		ctype string
		want  string
	}{
		{name: "csv", query: "", ctype: "text/csv", want: "" +
			"stocktake_id,employee_no,openid,code_type,code,location,qty,scanned_at,event_id,sku,name\n" +
			"ST0001,E001,oA,EAN_13,6901234567892,A-01,1,2025-03-01T10:00:00+08:00,ev1,6901234567892,\n" +
			"ST0001,E001,oA,EAN_13,6901234567892,A-01,1,2025-03-01T10:00:00+08:00,ev2,6901234567892,\n" +
			"ST0001,E002,oB,QR_CODE,\"a,b \"\"c\"\"\",,1,2025-03-01T10:00:00+08:00,ev3,\"a,b \"\"c\"\"\",\n"},
		{name: "summary csv", query: "?summary=1", ctype: "text/csv", want: "" +
			"location,code,qty\n" +
			",\"a,b \"\"c\"\"\",1\n" +
			"A-01,6901234567892,2\n"},
		{name: "summary json", query: "?summary=1&format=json", ctype: "application/json", want: "" +
			"[\n" +
			`{"location":"","code":"a,b \"c\"","qty":1},` + "\n" +
			`{"location":"A-01","code":"6901234567892","qty":2}` + "\n" +
			"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, e, "/admin/stocktakes/ST0001/scans"+tt.query)
			if got, want := resp.code, http.StatusOK; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, resp.body)
			}
			if got, want := resp.ctype, tt.ctype; !strings.HasPrefix(got, want) {
				t.Fatalf("content-type=%q, want %q", got, want)
			}
			if got, want := resp.body, tt.want; got != want {
				t.Fatalf("body:\n%s\nwant:\n%s", got, want)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		resp := get(t, e, "/admin/stocktakes/ST0001/scans?format=json")
		if got, want := resp.code, http.StatusOK; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		rows := decode[[]map[string]any](t, resp.body)
		if got, want := len(rows), 3; got != want {
			t.Fatalf("rows=%d, want %d", got, want)
		}
		want := map[string]any{"stocktake_id": "ST0001", "employee_no": "E001", "openid": "oA", "code_type": "EAN_13",
			"code": "6901234567892", "location": "A-01", "qty": 1.0, "scanned_at": "2025-03-01T10:00:00+08:00", "event_id": "ev1",
			"sku": "6901234567892", "name": ""}
		if !reflect.DeepEqual(rows[0], want) {
			t.Fatalf("row 0=%v, want %v", rows[0], want)
		}
	})

	t.Run("empty json", func(t *testing.T) {
		if _, err := e.DB.CloseStocktake("ST0001", e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.DB.OpenStocktake("empty", e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		resp := get(t, e, "/admin/stocktakes/ST0002/scans?format=json")
		if got, want := strings.TrimSpace(resp.body), "[]"; got != want {
			t.Fatalf("body=%q, want %q", got, want)
		}
	})

	t.Run("bad format", func(t *testing.T) {
		code, body := do(t, e, "GET", "/admin/stocktakes/ST0001/scans?format=xml", "", "")
		if got, want := code, http.StatusBadRequest; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		errorOf(t, body)
	})
}

// TestAdminExportLarge streams many scans and checks every row arrives.
func TestAdminExportLarge(t *testing.T) {
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
				Code: "690", Qty: 1, ScannedAt: e.Clock.Now(), EventID: "ev" + string(rune('a'+i%26))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, e, "/admin/stocktakes/"+st.ID+"/scans")
	recs, err := csv.NewReader(strings.NewReader(resp.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), n+1; got != want {
		t.Fatalf("csv records=%d, want %d", got, want)
	}
}

type response struct {
	code  int
	ctype string
	body  string
}

func get(tb testing.TB, e *admintest.Env, path string) response {
	tb.Helper()
	req, _ := http.NewRequest("GET", e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{code: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

func TestAdminBindings(t *testing.T) {
	e := admintest.MustServer(t, token)
	e.MustImport(t, store.Staff{EmployeeNo: "E001", Name: "张三", BindCode: "111111"}, store.Staff{EmployeeNo: "E002", Name: "Li", BindCode: "222222"})
	for openid, emp := range map[string]string{"oB": "E002", "oA": "E001"} {
		if _, err := e.DB.Bind(openid, emp, "", e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}

	code, body := do(t, e, "GET", "/admin/bindings", "", "")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d", got, want)
	}
	list := decode[[]store.Binding](t, body)
	if got, want := len(list), 2; got != want {
		t.Fatalf("bindings=%d, want %d", got, want)
	}
	if got, want := list[0].OpenID+"/"+list[0].EmployeeNo+"/"+list[0].Name+"/"+list[0].State, "oA/E001/张三/active"; got != want {
		t.Fatalf("binding 0=%s, want %s", got, want)
	}

	tests := []struct {
		name     string
		openid   string
		wantCode int
	}{
		{name: "remove", openid: "oA", wantCode: http.StatusNoContent},
		{name: "remove again", openid: "oA", wantCode: http.StatusNotFound},
		{name: "remove unknown", openid: "oZ", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, e, "DELETE", "/admin/bindings/"+tt.openid, "", "")
			if got, want := code, tt.wantCode; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if code == http.StatusNotFound {
				if got, want := errorOf(t, body), "no binding for openid "+tt.openid; got != want {
					t.Fatalf("error=%q, want %q", got, want)
				}
			}
		})
	}
	if _, err := e.DB.BindingByOpenID("oA"); err == nil {
		t.Fatal("binding oA still there")
	}
	code, body = do(t, e, "GET", "/admin/bindings", "", "")
	if got, want := len(decode[[]store.Binding](t, body)), 1; code != 200 || got != want {
		t.Fatalf("status %d, bindings=%d, want %d", code, got, want)
	}
}

func TestAdminMenu(t *testing.T) {
	e := admintest.MustServer(t, token)
	code, body := do(t, e, "POST", "/admin/menu", "", "")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	type button struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Key  string `json:"key"`
		URL  string `json:"url"`
	}
	type menu struct {
		Button []button `json:"button"`
	}
	want := menu{Button: []button{
		{Type: "view", Name: "绑定账号", URL: admintest.PublicURL + "/bind"},
		{Type: "scancode_waitmsg", Name: "扫码盘点", Key: "scan"},
		{Type: "view", Name: "扫码页面", URL: admintest.PublicURL + "/scan"},
	}}
	if got := decode[menu](t, body); !reflect.DeepEqual(got, want) {
		t.Fatalf("answer=%+v, want %+v", got, want)
	}
	if got := decode[menu](t, string(e.Fake.Menu())); !reflect.DeepEqual(got, want) {
		t.Fatalf("pushed=%+v, want %+v", got, want)
	}

	t.Run("wechat refuses", func(t *testing.T) {
		e.Fake.FailNext("/cgi-bin/menu/create", 40016, 1)
		code, body := do(t, e, "POST", "/admin/menu", "", "")
		if got, want := code, http.StatusBadGateway; got != want {
			t.Fatalf("status=%d, want %d (%s)", got, want, body)
		}
		if got := errorOf(t, body); !strings.Contains(got, "40016") {
			t.Fatalf("error=%q, want the errcode", got)
		}
	})
	t.Run("wechat down", func(t *testing.T) {
		e.Fake.FailNext("/cgi-bin/menu/create", 503, 1)
		code, body := do(t, e, "POST", "/admin/menu", "", "")
		if got, want := code, http.StatusServiceUnavailable; got != want {
			t.Fatalf("status=%d, want %d (%s)", got, want, body)
		}
		errorOf(t, body)
	})
}

func TestAdminDLQ(t *testing.T) {
	e := admintest.MustServer(t, token)
	first := time.Date(2025, 3, 1, 1, 0, 0, 0, time.UTC)
	e.MustDeadLetter(t, "msg-1", "errcode 45015: reply window passed", 1, first)
	e.MustDeadLetter(t, "msg-2", "too many attempts", 12, first.Add(time.Minute))
	e.MustDeadLetter(t, "msg-3", "too many attempts", 12, first.Add(2*time.Minute))

	code, body := do(t, e, "GET", "/admin/dlq", "", "")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	list := decode[[]events.DeadLetter](t, body)
	if got, want := len(list), 3; got != want {
		t.Fatalf("dead letters=%d, want %d", got, want)
	}
	d := list[0]
	if got, want := d.Subject, "wechat."+eventstest.AppID+".msg.text"; got != want {
		t.Fatalf("subject=%q, want %q", got, want)
	}
	if got, want := d.Reason+"|"+d.EventID, "errcode 45015: reply window passed|msg-1"; got != want {
		t.Fatalf("reason|event=%q, want %q", got, want)
	}
	if got, want := d.Attempts, 1; got != want {
		t.Fatalf("attempts=%d, want %d", got, want)
	}
	if got, want := d.FirstFailed, first; !got.Equal(want) {
		t.Fatalf("first failed=%s, want %s", got, want)
	}

	tests := []struct {
		name     string
		path     string
		wantCode int
	}{
		{name: "replay one", path: "/admin/dlq/" + itoa(d.ID) + "/replay", wantCode: http.StatusOK},
		{name: "replay it again", path: "/admin/dlq/" + itoa(d.ID) + "/replay", wantCode: http.StatusNotFound},
		{name: "replay unknown", path: "/admin/dlq/999/replay", wantCode: http.StatusNotFound},
		{name: "replay bad id", path: "/admin/dlq/abc/replay", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, e, "POST", tt.path, "", "")
			if got, want := code, tt.wantCode; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if code != http.StatusOK {
				errorOf(t, body)
				return
			}
			if got, want := decode[events.DeadLetter](t, body).EventID, "msg-1"; got != want {
				t.Fatalf("replayed event=%q, want %q", got, want)
			}
		})
	}
	if got, want := streamMsgs(t, e, events.StreamName), uint64(1); got != want {
		t.Fatalf("WECHAT msgs=%d, want %d", got, want)
	}
	ctx := context.Background()
	st, err := e.Bus.JetStream().Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, d.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decode[events.Event](t, string(m.Data)).ID, "msg-1"; got != want {
		t.Fatalf("replayed event id=%q, want %q", got, want)
	}

	code, body = do(t, e, "POST", "/admin/dlq/replay", "", "")
	if got, want := code, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	if got, want := strings.TrimSpace(body), `{"replayed":2}`; got != want {
		t.Fatalf("body=%s, want %s", got, want)
	}
	if got, want := streamMsgs(t, e, events.StreamName), uint64(3); got != want {
		t.Fatalf("WECHAT msgs=%d, want %d", got, want)
	}
	if got, want := streamMsgs(t, e, events.DLQStreamName), uint64(0); got != want {
		t.Fatalf("DLQ msgs=%d, want %d", got, want)
	}
	code, body = do(t, e, "GET", "/admin/dlq", "", "")
	if got, want := strings.TrimSpace(body), "[]"; code != 200 || got != want {
		t.Fatalf("status %d, body=%s, want %s", code, got, want)
	}
}

func TestAdminStatus(t *testing.T) {
	e := admintest.MustServer(t, token)
	st, err := e.DB.OpenStocktake("March", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 2025-03-01 02:00 UTC is 10:00 in Shanghai: a scan at 15:59 UTC the day
	// before (23:59 in Shanghai) is yesterday, one at 16:00 UTC is today.
	now := e.Clock.Now()
	e.Clock.Set(time.Date(2025, 2, 28, 15, 59, 59, 0, time.UTC))
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "1", "", "ev1")
	e.Clock.Set(time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC))
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "2", "", "ev2")
	e.Clock.Set(now)
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "3", "", "ev3")
	e.MustDeadLetter(t, "msg-1", "bad", 1, now)
	if err := e.DB.Update(func(tx *store.Tx) error { return tx.PutOutbox("ev3", []byte(`{}`)) }); err != nil {
		t.Fatal(err)
	}

	t.Run("before any token refresh", func(t *testing.T) {
		code, body := do(t, e, "GET", "/admin/status", "", "")
		if got, want := code, http.StatusOK; got != want {
			t.Fatalf("status=%d, want %d (%s)", got, want, body)
		}
		m := decode[map[string]any](t, body)
		want := map[string]any{
			"stream_msgs": 0.0, "stream_bytes": 0.0, "dlq_msgs": 1.0, "consumer_pending": 0.0,
			"consumer_ack_pending": 0.0, "consumer_redelivered": 0.0, "token_refreshes": 0.0,
			"scans_today": 2.0, "outbox": 1.0,
		}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("status=%v, want %v", m, want)
		}
	})
	t.Run("after a token refresh", func(t *testing.T) {
		if _, err := e.WeChat.AccessToken(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, body := do(t, e, "GET", "/admin/status", "", "")
		s := decode[admin.Status](t, body)
		if s.TokenRefreshes == nil || *s.TokenRefreshes != 1 {
			t.Fatalf("token_refreshes=%v, want 1", s.TokenRefreshes)
		}
		if s.LastTokenRefresh == nil || s.LastTokenRefresh.IsZero() {
			t.Fatalf("last_token_refresh missing: %s", body)
		}
	})
}

func TestAdminStartOfDay(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{name: "morning", in: time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC), want: time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC)},
		{name: "late utc evening is next day", in: time.Date(2025, 3, 1, 17, 0, 0, 0, time.UTC), want: time.Date(2025, 3, 1, 16, 0, 0, 0, time.UTC)},
		{name: "midnight", in: time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC), want: time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := admin.StartOfDay(tt.in), tt.want; !got.Equal(want) {
				t.Fatalf("StartOfDay(%s)=%s, want %s", tt.in, got.UTC(), want)
			}
		})
	}
}

func streamMsgs(tb testing.TB, e *admintest.Env, name string) uint64 {
	tb.Helper()
	ctx := context.Background()
	st, err := e.Bus.JetStream().Stream(ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAdminLogAndUnavailable(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	nsrv := eventstest.MustServer(t)
	bus := eventstest.MustBus(t, nsrv)
	var logs syncBuffer
	srv := httptest.NewServer(admin.New(admin.Config{Token: token, DB: db, Bus: bus,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	e := &admintest.Env{URL: srv.URL, Token: token, DB: db, Bus: bus}

	if code, body := do(t, e, "GET", "/admin/stocktakes", "", ""); code != http.StatusOK {
		t.Fatalf("status=%d (%s)", code, body)
	}
	if code, _ := doAuth(t, e, "GET", "/admin/bindings", "", "", "Bearer wrong-"+token); code != http.StatusUnauthorized {
		t.Fatalf("status=%d, want 401", code)
	}
	t.Run("no WeChat client", func(t *testing.T) {
		code, body := do(t, e, "POST", "/admin/menu", "", "")
		if got, want := code, http.StatusServiceUnavailable; got != want {
			t.Fatalf("status=%d, want %d (%s)", got, want, body)
		}
	})
	t.Run("NATS down", func(t *testing.T) {
		nsrv.Shutdown()
		nsrv.WaitForShutdown()
		for _, path := range []string{"/admin/status", "/admin/dlq"} {
			start := time.Now()
			code, body := do(t, e, "GET", path, "", "")
			if got, want := code, http.StatusServiceUnavailable; got != want {
				t.Fatalf("%s: status=%d, want %d (%s)", path, got, want, body)
			}
			errorOf(t, body)
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("%s: took %s", path, d)
			}
		}
	})

	srv.Close() // waits for the handlers, and so for their log lines
	out := logs.String()
	for _, want := range []string{"method=GET path=/admin/stocktakes status=200", "path=/admin/bindings status=401", "path=/admin/status status=503"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Fatalf("log contains the token:\n%s", out)
	}
}
