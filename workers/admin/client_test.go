package admin_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

func mustClient(tb testing.TB, url, token string) *admin.Client {
	tb.Helper()
	c, err := admin.NewClient(url, token)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// apiError fails unless err is an *admin.Error with status and message.
func apiError(tb testing.TB, err error, status int, msg string) {
	tb.Helper()
	var ae *admin.Error
	if !errors.As(err, &ae) {
		tb.Fatalf("err=%v (%T), want an *admin.Error", err, err)
	}
	if ae.Status != status || ae.Message != msg {
		tb.Fatalf("error=%d %q, want %d %q", ae.Status, ae.Message, status, msg)
	}
}

// TestClient runs every method against the real admin handler.
func TestClient(t *testing.T) {
	e := admintest.MustServer(t, token)
	c := mustClient(t, e.URL+"/", token)
	ctx := testCtx(t)

	res, err := c.ImportUsers(ctx, strings.NewReader("employee_no,name,bind_code,can_scan\nE001,张三,111111,是\nE002,Li,222222,no\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res, (admin.ImportResult{Added: 2}); got != want {
		t.Fatalf("import=%+v, want %+v", got, want)
	}
	_, err = c.ImportUsers(ctx, strings.NewReader("employee_no,name,bind_code,can_scan\nE003,A,333333,yes\nE004,B,,yes\n"), "")
	apiError(t, err, http.StatusBadRequest, "line 3: bind_code is empty")
	if got, want := err.Error(), "400 Bad Request: line 3: bind_code is empty"; got != want {
		t.Fatalf("error=%q, want %q", got, want)
	}
	if list, err := e.DB.StaffList(); err != nil || len(list) != 2 {
		t.Fatalf("staff after a bad import=%d (%v), want 2", len(list), err)
	}

	st, err := c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: "March"})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "ST0001" || st.Name != "March" || st.State != "open" {
		t.Fatalf("opened %+v", st)
	}
	_, err = c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: "April"})
	apiError(t, err, http.StatusConflict, `open stocktake "April": ST0001 (March) is open and covers every location: close it first or choose other locations`)
	_, err = c.OpenStocktake(ctx, admin.OpenStocktakeRequest{Name: " "})
	apiError(t, err, http.StatusBadRequest, "name is empty")

	e.MustScan(t, "ST0001", "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev1")
	e.MustScan(t, "ST0001", "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev2")
	var buf bytes.Buffer
	if err := c.ExportScans(ctx, "ST0001", admin.ExportOptions{Summary: true}, &buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "location,code,qty\nA-01,6901234567892,2\n"; got != want {
		t.Fatalf("summary=%q, want %q", got, want)
	}
	buf.Reset()
	if err := c.ExportScans(ctx, "ST0001", admin.ExportOptions{Format: "json"}, &buf); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), `"event_id"`); got != 2 {
		t.Fatalf("json export has %d scans, want 2: %s", got, buf.String())
	}
	buf.Reset()
	err = c.ExportScans(ctx, "ST0099", admin.ExportOptions{}, &buf)
	apiError(t, err, http.StatusNotFound, "stocktake ST0099 not found")
	if buf.Len() != 0 {
		t.Fatalf("a failed export wrote %q", buf.String())
	}
	err = c.ExportScans(ctx, "ST0001", admin.ExportOptions{Format: "xml"}, &buf)
	apiError(t, err, http.StatusBadRequest, `format "xml": want csv, json or xlsx`)

	closed, err := c.CloseStocktake(ctx, "ST0001")
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != "closed" || closed.Scans != 2 || closed.ClosedAt.IsZero() {
		t.Fatalf("closed %+v", closed)
	}
	_, err = c.CloseStocktake(ctx, "ST0001")
	apiError(t, err, http.StatusConflict, "stocktake ST0001 is already closed")
	list, err := c.Stocktakes(ctx)
	if err != nil || len(list) != 1 || list[0].State != "closed" {
		t.Fatalf("stocktakes=%+v, %v", list, err)
	}

	if _, err := e.DB.Bind("oA", "E001", "", e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	bs, err := c.Bindings(ctx)
	if err != nil || len(bs) != 1 || bs[0].OpenID != "oA" || bs[0].Name != "张三" {
		t.Fatalf("bindings=%+v, %v", bs, err)
	}
	if err := c.RemoveBinding(ctx, "oA"); err != nil {
		t.Fatal(err)
	}
	apiError(t, c.RemoveBinding(ctx, "oA"), http.StatusNotFound, "no binding for openid oA")
	if bs, err := c.Bindings(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("bindings after remove=%+v, %v", bs, err)
	}

	menu, err := c.PushMenu(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(menu.Buttons), 3; got != want {
		t.Fatalf("menu buttons=%d, want %d", got, want)
	}

	first := time.Date(2025, 3, 1, 1, 0, 0, 0, time.UTC)
	e.MustDeadLetter(t, "msg-1", "too many attempts", 12, first)
	e.MustDeadLetter(t, "msg-2", "too many attempts", 12, first)
	dl, err := c.DLQ(ctx)
	if err != nil || len(dl) != 2 || dl[0].EventID != "msg-1" || !dl[0].FirstFailed.Equal(first) {
		t.Fatalf("dlq=%+v, %v", dl, err)
	}
	d, err := c.Replay(ctx, dl[0].ID)
	if err != nil || d.EventID != "msg-1" {
		t.Fatalf("replay=%+v, %v", d, err)
	}
	_, err = c.Replay(ctx, dl[0].ID)
	apiError(t, err, http.StatusNotFound, "no dead letter 1")
	all, err := c.ReplayAll(ctx)
	if err != nil || all.Replayed != 1 {
		t.Fatalf("replay all=%+v, %v", all, err)
	}

	status, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.ScansToday != 2 || status.TokenRefreshes == nil || status.DLQMsgs != 0 {
		t.Fatalf("status=%+v", status)
	}
}

// TestClientErrors checks the one error mapper: the API's own errors, an API
// that is off, a wrong token, servers that are not wxscan, and no server.
func TestClientErrors(t *testing.T) {
	ctx := testCtx(t)
	on := admintest.MustServer(t, token)
	off := admintest.MustServer(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	foreign := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	notFound := foreign(http.NotFoundHandler().ServeHTTP)
	html := foreign(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><body>It works!</body></html>"))
	})
	jsonNotFound := foreign(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}`))
	})
	gateway := foreign(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
	})

	tests := []struct {
		name   string
		server string
		token  string
		is     error
		want   string
	}{
		{name: "off", server: off.URL, token: token, is: admin.ErrOff,
			want: "admin API is off: set WXSCAN_ADMIN_TOKEN on the server"},
		{name: "wrong token", server: on.URL, token: "wrong", is: admin.ErrUnauthorized,
			want: "unauthorized: check WXSCAN_ADMIN_TOKEN"},
		{name: "no token", server: on.URL, token: "", is: admin.ErrUnauthorized,
			want: "unauthorized: check WXSCAN_ADMIN_TOKEN (it is not set here)"},
		{name: "plain 404", server: notFound, token: token, is: admin.ErrNotAdminAPI,
			want: notFound + " does not look like a wxscan server (404 Not Found, text/plain)"},
		{name: "html 200", server: html, token: token, is: admin.ErrNotAdminAPI,
			want: html + " does not look like a wxscan server (200 OK, text/html)"},
		{name: "json 404 without the header", server: jsonNotFound, token: token, is: admin.ErrNotAdminAPI,
			want: jsonNotFound + " does not look like a wxscan server (404 Not Found, application/json)"},
		{name: "proxy 502 page", server: gateway, token: token, is: admin.ErrNotAdminAPI,
			want: gateway + " does not look like a wxscan server (502 Bad Gateway, text/html)"},
		{name: "connection refused", server: refused, token: token, is: admin.ErrUnreachable,
			want: "cannot reach wxscan at " + refused + " (is `wxscan serve` running?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustClient(t, tt.server, tt.token).Stocktakes(ctx)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err=%v, want one matching %v", err, tt.is)
			}
			if got := err.Error(); got != tt.want {
				t.Fatalf("error=%q, want %q", got, tt.want)
			}
			if errors.Is(err, admin.ErrOff) != (tt.is == admin.ErrOff) {
				t.Fatalf("err=%v says the API is off", err)
			}
		})
	}

	t.Run("an unknown record is not a foreign server", func(t *testing.T) {
		_, err := mustClient(t, on.URL, token).CloseStocktake(ctx, "ST0042")
		apiError(t, err, http.StatusNotFound, "stocktake ST0042 not found")
		if errors.Is(err, admin.ErrNotAdminAPI) || errors.Is(err, admin.ErrOff) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("bad base URL", func(t *testing.T) {
		if _, err := admin.NewClient("127.0.0.1:8080", token); err == nil {
			t.Fatal("NewClient accepted a URL without a scheme")
		}
	})
	t.Run("foreign export writes nothing", func(t *testing.T) {
		for _, srv := range []string{notFound, html} {
			var buf bytes.Buffer
			err := mustClient(t, srv, token).ExportScans(ctx, "ST0001", admin.ExportOptions{}, &buf)
			if !errors.Is(err, admin.ErrNotAdminAPI) || buf.Len() != 0 {
				t.Fatalf("%s: err=%v, wrote %q", srv, err, buf.String())
			}
		}
	})
}

func TestClientBackup(t *testing.T) {
	ctx := testCtx(t)
	t.Run("foreign server", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>login</html>"))
		}))
		t.Cleanup(srv.Close)
		var buf bytes.Buffer
		n, err := mustClient(t, srv.URL, token).Backup(ctx, &buf)
		if !errors.Is(err, admin.ErrNotAdminAPI) || n != 0 || buf.Len() != 0 {
			t.Fatalf("backup from a foreign server: n=%d err=%v, wrote %q", n, err, buf.String())
		}
	})
	t.Run("admin API", func(t *testing.T) {
		e := admintest.MustServer(t, token)
		e.MustImport(t)
		var buf bytes.Buffer
		n, err := mustClient(t, e.URL, token).Backup(ctx, &buf)
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Message, "no such endpoint") {
			t.Skip("this server has no GET /admin/backup yet")
		}
		if err != nil {
			t.Fatal(err)
		}
		// A bbolt file starts with its meta page: magic 0xED0CDAED at offset 16.
		if n != int64(buf.Len()) || n < 4096 || !bytes.Equal(buf.Bytes()[16:20], []byte{0xED, 0xDA, 0x0C, 0xED}) {
			t.Fatalf("backup n=%d len=%d is not a bbolt file", n, buf.Len())
		}
	})
}
