package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin/admintest"
)

const cliToken = "cli-admin-token"

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs `wxscan args...` against server with token in the
// environment.
func runCLI(tb testing.TB, server, token string, args ...string) cliResult {
	tb.Helper()
	env := map[string]string{"WXSCAN_SERVER": server, "WXSCAN_ADMIN_TOKEN": token}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustOK fails unless the command succeeded with nothing on stderr.
func (r cliResult) mustOK(tb testing.TB) cliResult {
	tb.Helper()
	if r.code != 0 || r.stderr != "" {
		tb.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestOperatorCLI(t *testing.T) {
	e := admintest.MustServer(t, cliToken)
	cli := func(args ...string) cliResult { return runCLI(t, e.URL, cliToken, args...) }

	staff := writeFile(t, "staff.csv", "employee_no,name,bind_code,can_scan\nE001,张三,111111,是\nE002,Li Si,222222,no\n")
	bad := writeFile(t, "bad.csv", "employee_no,name,bind_code,can_scan\nE003,A,333333,yes\nE004,B,,yes\n")
	now := e.Clock.Now()
	missing := filepath.Join(t.TempDir(), "nope.csv")
	first := time.Date(2025, 3, 1, 1, 0, 0, 0, time.UTC)

	steps := []struct {
		name    string
		args    []string
		setup   func(t *testing.T)
		want    string // the whole stdout
		wantErr string // the whole stderr; the exit code is then 1
	}{
		{name: "import", args: []string{"users", "import", staff}, want: "added 2, updated 0\n"},
		{name: "import again", args: []string{"users", "import", staff, "--json"}, want: "{\n  \"added\": 0,\n  \"updated\": 0\n}\n"},
		{name: "import bad row", args: []string{"users", "import", bad},
			wantErr: "wxscan users: 400 Bad Request: line 3: bind_code is empty\n"},
		{name: "import missing file", args: []string{"users", "import", missing},
			wantErr: "wxscan users: read staff file: open " + missing + ": no such file or directory\n"},
		{name: "stocktake open", args: []string{"stocktake", "open", "March", "count"}, want: "opened stocktake ST0001 \"March count\" (all locations, 0 book stock rows)\nST0001\n"},
		{name: "stocktake open conflict", args: []string{"stocktake", "open", "April"},
			wantErr: "wxscan stocktake: 409 Conflict: open stocktake \"April\": ST0001 (March count) is open and covers every location: close it first or choose other locations\n"},
		{name: "stocktake list open", args: []string{"stocktake", "list"},
			want: "id\tname\tstate\tlocations\texpected_rows\topened_at\tclosed_at\tscans\nST0001\tMarch count\topen\t*\t0\t2025-03-01T02:00:00Z\t-\t0\n"},
		{name: "scans export csv", args: []string{"scans", "export", "--stocktake", "ST0001"},
			setup: func(t *testing.T) {
				e.MustScan(t, "ST0001", "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev1")
				e.MustScan(t, "ST0001", "oA", "E001", "EAN_13", "6901234567892", "A-01", "ev2")
				e.MustScan(t, "ST0001", "oB", "E002", "QR_CODE", "X1", "B-02", "ev3")
			},
			want: "stocktake_id,employee_no,openid,code_type,code,location,qty,scanned_at,event_id,sku,name\n" +
				"ST0001,E001,oA,EAN_13,6901234567892,A-01,1,2025-03-01T10:00:00+08:00,ev1,6901234567892,\n" +
				"ST0001,E001,oA,EAN_13,6901234567892,A-01,1,2025-03-01T10:00:00+08:00,ev2,6901234567892,\n" +
				"ST0001,E002,oB,QR_CODE,X1,B-02,1,2025-03-01T10:00:00+08:00,ev3,X1,\n"},
		{name: "scans export summary, flags after", args: []string{"scans", "export", "--stocktake", "ST0001", "--summary"},
			want: "location,code,qty\nA-01,6901234567892,2\nB-02,X1,1\n"},
		{name: "scans export summary json", args: []string{"scans", "--summary", "export", "--stocktake=ST0001", "--format", "json"},
			want: "[\n{\"location\":\"A-01\",\"code\":\"6901234567892\",\"qty\":2},\n{\"location\":\"B-02\",\"code\":\"X1\",\"qty\":1}\n]\n"},
		{name: "scans export unknown", args: []string{"scans", "export", "--stocktake", "ST0099"},
			wantErr: "wxscan scans: 404 Not Found: stocktake ST0099 not found\n"},
		{name: "scans export without stocktake", args: []string{"scans", "export"},
			wantErr: "wxscan scans: --stocktake ID is required (usage: wxscan scans export --stocktake ID [--format csv|json|xlsx] [--summary|--variance] [--output FILE])\n"},
		{name: "stocktake close", args: []string{"stocktake", "close", "ST0001"}, want: "closed stocktake ST0001 \"March count\": 3 scans\n"},
		{name: "stocktake close again", args: []string{"stocktake", "close", "ST0001"},
			wantErr: "wxscan stocktake: 409 Conflict: stocktake ST0001 is already closed\n"},
		{name: "stocktake open json", args: []string{"stocktake", "open", "April", "--json"},
			want: "{\n  \"id\": \"ST0002\",\n  \"name\": \"April\",\n  \"opened_at\": \"2025-03-01T02:00:00Z\",\n  \"scans\": 0,\n  \"state\": \"open\"\n}\n"},
		{name: "stocktake list", args: []string{"stocktake", "list"},
			want: "id\tname\tstate\tlocations\texpected_rows\topened_at\tclosed_at\tscans\n" +
				"ST0001\tMarch count\tclosed\t*\t0\t2025-03-01T02:00:00Z\t2025-03-01T02:00:00Z\t3\n" +
				"ST0002\tApril\topen\t*\t0\t2025-03-01T02:00:00Z\t-\t0\n"},
		{name: "bindings list", args: []string{"bindings", "list"},
			setup: func(t *testing.T) {
				for openid, emp := range map[string]string{"oA": "E001", "oB": "E002"} {
					if _, err := e.DB.Bind(openid, emp, "", now); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.DB.SetBindingState("oB", store.StateSuspended); err != nil {
					t.Fatal(err)
				}
			},
			want: "openid\temployee_no\tname\tstate\tbound_at\n" +
				"oA\tE001\t张三\tactive\t2025-03-01T02:00:00Z\n" +
				"oB\tE002\tLi Si\tsuspended\t2025-03-01T02:00:00Z\n"},
		{name: "bindings remove", args: []string{"bindings", "remove", "oB"}, want: "removed binding oB\n"},
		{name: "bindings remove unknown", args: []string{"bindings", "remove", "oB"},
			wantErr: "wxscan bindings: 404 Not Found: no binding for openid oB\n"},
		{name: "bindings list json", args: []string{"bindings", "list", "--json"},
			want: "[\n  {\n    \"openid\": \"oA\",\n    \"employee_no\": \"E001\",\n    \"name\": \"张三\",\n    \"state\": \"active\",\n    \"bound_at\": \"2025-03-01T02:00:00Z\"\n  }\n]\n"},
		{name: "menu push", args: []string{"menu", "push"},
			want: "pushed the menu (3 buttons)\n" +
				"绑定账号\tview\t" + admintest.PublicURL + "/bind\n" +
				"扫码盘点\tscancode_waitmsg\tscan\n" +
				"扫码页面\tview\t" + admintest.PublicURL + "/scan\n"},
		{name: "dlq list empty", args: []string{"dlq", "list"}, want: "id\tsubject\treason\tattempts\tfirst_failed_at\n"},
		{name: "dlq list", args: []string{"dlq", "list"},
			setup: func(t *testing.T) {
				e.MustDeadLetter(t, "msg-1", "errcode 45015:\treply window passed", 1, first)
				e.MustDeadLetter(t, "msg-2", "too many attempts", 12, first.Add(time.Minute))
				e.MustDeadLetter(t, "msg-3", "too many attempts", 12, first.Add(2*time.Minute))
			},
			want: "id\tsubject\treason\tattempts\tfirst_failed_at\n" +
				"1\twechat." + eventstest.AppID + ".msg.text\terrcode 45015: reply window passed\t1\t2025-03-01T01:00:00Z\n" +
				"2\twechat." + eventstest.AppID + ".msg.text\ttoo many attempts\t12\t2025-03-01T01:01:00Z\n" +
				"3\twechat." + eventstest.AppID + ".msg.text\ttoo many attempts\t12\t2025-03-01T01:02:00Z\n"},
		{name: "dlq replay", args: []string{"dlq", "replay", "1"},
			want: "replayed dead letter 1 (event msg-1) onto wechat." + eventstest.AppID + ".msg.text\n"},
		{name: "dlq replay gone", args: []string{"dlq", "replay", "1"}, wantErr: "wxscan dlq: 404 Not Found: no dead letter 1\n"},
		{name: "dlq replay all", args: []string{"dlq", "replay", "--all"}, want: "replayed 2 dead letters\n"},
		{name: "dlq replay all json", args: []string{"dlq", "--all", "replay", "--json"}, want: "{\n  \"replayed\": 0\n}\n"},
		{name: "dlq replay both", args: []string{"dlq", "replay", "2", "--all"}, wantErr: "wxscan dlq: usage: wxscan dlq list | replay ID|--all\n"},
		{name: "unknown subcommand", args: []string{"stocktake", "reopen", "ST0001"}, wantErr: "wxscan stocktake: usage: wxscan stocktake open NAME [--locations PREFIX,...] [--expected FILE] | close ID | list\n"},
		{name: "unknown flag", args: []string{"bindings", "list", "--xml"}, wantErr: "__flag__"},
	}
	for _, tt := range steps {
		if tt.setup != nil {
			tt.setup(t)
		}
		r := cli(tt.args...)
		if tt.wantErr == "__flag__" {
			if r.code == 0 || !strings.Contains(r.stderr, "flag provided but not defined: -xml") {
				t.Fatalf("%s: exit %d, stderr %q", tt.name, r.code, r.stderr)
			}
			continue
		}
		if tt.wantErr != "" {
			if got, want := r.code, 1; got != want {
				t.Fatalf("%s: exit=%d, want %d (stdout %q)", tt.name, got, want, r.stdout)
			}
			if got, want := r.stderr, tt.wantErr; got != want {
				t.Fatalf("%s: stderr=%q, want %q", tt.name, got, want)
			}
			continue
		}
		r.mustOK(t)
		if got, want := r.stdout, tt.want; got != want {
			t.Fatalf("%s: stdout:\n%s\nwant:\n%s", tt.name, got, want)
		}
	}
	if got, want := len(e.Fake.Menu()) > 0, true; got != want {
		t.Fatalf("menu pushed=%v, want %v", got, want)
	}
}

func TestOperatorCLIStatus(t *testing.T) {
	e := admintest.MustServer(t, cliToken)
	st, err := e.DB.OpenStocktake("March", e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.MustScan(t, st.ID, "oA", "E1", "EAN_13", "1", "", "ev1")

	r := runCLI(t, e.URL, cliToken, "status").mustOK(t)
	want := "stream_msgs: 0\nstream_bytes: 0\ndlq_msgs: 0\nconsumer_pending: 0\nconsumer_ack_pending: 0\n" +
		"consumer_redelivered: 0\ntoken_refreshes: 0\nscans_today: 1\noutbox: 0\n"
	if got := r.stdout; got != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", got, want)
	}

	r = runCLI(t, e.URL, cliToken, "status", "--json").mustOK(t)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("status --json: %v: %q", err, r.stdout)
	}
	if got, want := m["scans_today"], 1.0; got != want {
		t.Fatalf("scans_today=%v, want %v", got, want)
	}

	if _, err := e.WeChat.AccessToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, e.URL, cliToken, "status").mustOK(t)
	if !strings.Contains(r.stdout, "\nlast_token_refresh: 20") || !strings.Contains(r.stdout, "\ntoken_refreshes: 1\n") {
		t.Fatalf("stdout lacks the token refresh:\n%s", r.stdout)
	}
}

func TestOperatorCLIErrors(t *testing.T) {
	on := admintest.MustServer(t, cliToken)
	off := admintest.MustServer(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	plain := httptest.NewServer(http.NotFoundHandler()) // a server without the admin API
	t.Cleanup(plain.Close)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<html><body>Welcome to nginx!</body></html>")
	}))
	t.Cleanup(page.Close)

	tests := []struct {
		name    string
		server  string
		token   string
		args    []string
		wantErr string
	}{
		{name: "connection refused", server: refused, token: cliToken, args: []string{"status"},
			wantErr: "wxscan status: cannot reach wxscan at " + refused + " (is `wxscan serve` running?)\n"},
		{name: "admin off", server: off.URL, token: cliToken, args: []string{"stocktake", "list"},
			wantErr: "wxscan stocktake: admin API is off: set WXSCAN_ADMIN_TOKEN on the server\n"},
		{name: "not an admin API", server: plain.URL, token: cliToken, args: []string{"bindings", "list"},
			wantErr: "wxscan bindings: " + plain.URL + " does not look like a wxscan server (404 Not Found, text/plain)\n"},
		{name: "an HTML page", server: page.URL, token: cliToken, args: []string{"status"},
			wantErr: "wxscan status: " + page.URL + " does not look like a wxscan server (200 OK, text/html)\n"},
		{name: "wrong token", server: on.URL, token: "wrong", args: []string{"status"},
			wantErr: "wxscan status: unauthorized: check WXSCAN_ADMIN_TOKEN\n"},
		{name: "no token", server: on.URL, token: "", args: []string{"dlq", "list"},
			wantErr: "wxscan dlq: unauthorized: check WXSCAN_ADMIN_TOKEN (it is not set here)\n"},
		{name: "bad server", server: "127.0.0.1:8080", token: cliToken, args: []string{"status"},
			wantErr: "wxscan status: WXSCAN_SERVER (--server) \"127.0.0.1:8080\": want a URL like http://127.0.0.1:8080\n"},
		{name: "unknown command", server: on.URL, token: cliToken, args: []string{"frobnicate"},
			wantErr: "wxscan frobnicate: unknown command \"frobnicate\" (see wxscan help)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.server, tt.token, tt.args...)
			if got, want := r.code, 1; got != want {
				t.Fatalf("exit=%d, want %d (stderr %q)", got, want, r.stderr)
			}
			if got, want := r.stderr, tt.wantErr; got != want {
				t.Fatalf("stderr=%q, want %q", got, want)
			}
			if got, want := r.stdout, ""; got != want {
				t.Fatalf("stdout=%q, want %q", got, want)
			}
		})
	}

	t.Run("server flag reaches the server", func(t *testing.T) {
		r := runCLI(t, refused, cliToken, "stocktake", "list", "--server", on.URL).mustOK(t)
		if got, want := r.stdout, "id\tname\tstate\tlocations\texpected_rows\topened_at\tclosed_at\tscans\n"; got != want {
			t.Fatalf("stdout=%q, want %q", got, want)
		}
	})
	t.Run("help", func(t *testing.T) {
		r := runCLI(t, on.URL, cliToken, "scans", "export", "--help")
		if got, want := r.code, 0; got != want {
			t.Fatalf("exit=%d, want %d", got, want)
		}
		if !strings.Contains(r.stderr, "-stocktake ID") {
			t.Fatalf("help lacks --stocktake: %q", r.stderr)
		}
	})
}

func TestOperatorCLIBackup(t *testing.T) {
	e := admintest.MustServer(t, cliToken)
	dir := t.TempDir()
	path := filepath.Join(dir, "wxscan-backup.db")

	r := runCLI(t, e.URL, cliToken, "backup", path)
	if r.code != 0 && strings.Contains(r.stderr, "no such endpoint: GET /admin/backup") {
		t.Skip("this server has no GET /admin/backup yet")
	}
	r.mustOK(t)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.stdout, fmt.Sprintf("wrote backup %s (%d bytes)\n", path, info.Size()); got != want {
		t.Fatalf("stdout=%q, want %q", got, want)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("backup mode=%v, want %v", got, want)
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	db.Close()

	// An existing file is kept unless --force.
	r = runCLI(t, e.URL, cliToken, "backup", path)
	if got, want := r.stderr, "wxscan backup: "+path+" exists: choose another name or add --force to replace it\n"; r.code != 1 || got != want {
		t.Fatalf("exit %d, stderr=%q, want %q", r.code, got, want)
	}
	runCLI(t, e.URL, cliToken, "backup", "--force", path).mustOK(t)
	entries, _ := os.ReadDir(dir)
	if got, want := len(entries), 1; got != want {
		t.Fatalf("files in the backup dir=%d, want %d (no temporary file left)", got, want)
	}
}

func TestOperatorCLIBackupFails(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<html><body>Please sign in</body></html>")
	}))
	t.Cleanup(page.Close)
	off := admintest.MustServer(t, "")
	tests := []struct {
		name, server, wantErr string
	}{
		{name: "not wxscan", server: page.URL,
			wantErr: "wxscan backup: " + page.URL + " does not look like a wxscan server (200 OK, text/html)\n"},
		{name: "admin off", server: off.URL, wantErr: "wxscan backup: admin API is off: set WXSCAN_ADMIN_TOKEN on the server\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "b.db")
			r := runCLI(t, tt.server, cliToken, "backup", path)
			if r.code != 1 || r.stderr != tt.wantErr {
				t.Fatalf("exit %d, stderr=%q, want %q", r.code, r.stderr, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a failed backup left %v", entries)
			}
		})
	}
	t.Run("existing file kept", func(t *testing.T) {
		path := writeFile(t, "old.db", "old backup")
		r := runCLI(t, page.URL, cliToken, "backup", path)
		if r.code != 1 {
			t.Fatalf("exit %d", r.code)
		}
		if b, _ := os.ReadFile(path); string(b) != "old backup" {
			t.Fatalf("existing file changed to %q", b)
		}
	})
}

func TestOperatorCLIUsers(t *testing.T) {
	e := admintest.MustServer(t, cliToken)
	cli := func(args ...string) cliResult { return runCLI(t, e.URL, cliToken, args...) }
	staff := writeFile(t, "staff.csv", "employee_no,name,bind_code,can_scan\nE001,张三,111111,是\nE002,Li Si,222222,no\n")
	cli("users", "import", staff).mustOK(t)
	now := e.Clock.Now()
	if _, err := e.DB.Bind("oA", "E001", "", now); err != nil {
		t.Fatal(err)
	}
	err := e.DB.Update(func(tx *store.Tx) error {
		for range store.MaxBindFailures {
			if _, err := tx.CountEmployeeBindFailure("E002", now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	header := "employee_no\tname\tcan_scan\tstate\topenid\tbound_at\tbind_failures\tlocked_until\n"
	if got, want := cli("users", "list").mustOK(t).stdout, header+
		"E001\t张三\ttrue\tactive\toA\t2025-03-01T02:00:00Z\t0\t-\n"+
		"E002\tLi Si\tfalse\tunbound\t-\t-\t5\t2025-03-01T02:15:00Z\n"; got != want {
		t.Fatalf("users list:\n%s\nwant:\n%s", got, want)
	}
	out := cli("users", "list", "--json").mustOK(t).stdout
	if strings.Contains(out, "111111") || !strings.Contains(out, `"locked_until": "2025-03-01T02:15:00Z"`) {
		t.Fatalf("users list --json:\n%s", out)
	}
	if got, want := cli("users", "unlock", "E002").mustOK(t).stdout, "unlocked E002 (Li Si)\n"; got != want {
		t.Fatalf("unlock: %q, want %q", got, want)
	}
	if got, want := cli("users", "list").mustOK(t).stdout, header+
		"E001\t张三\ttrue\tactive\toA\t2025-03-01T02:00:00Z\t0\t-\n"+
		"E002\tLi Si\tfalse\tunbound\t-\t-\t0\t-\n"; got != want {
		t.Fatalf("users list after unlock:\n%s\nwant:\n%s", got, want)
	}
	cli("users", "unlock", "E002").mustOK(t) // idempotent
	if r := cli("users", "unlock", "E404"); r.code != 1 || r.stderr != "wxscan users: 404 Not Found: no employee E404 in the staff directory\n" {
		t.Fatalf("unlock unknown: exit %d, stderr %q", r.code, r.stderr)
	}
	if got, want := cli("bindings", "unlock", "oGuess").mustOK(t).stdout, "unlocked openid oGuess\n"; got != want {
		t.Fatalf("bindings unlock: %q, want %q", got, want)
	}
}

func TestOperatorCLIExportOutput(t *testing.T) {
	e := admintest.MustServer(t, cliToken)
	cli := func(args ...string) cliResult { return runCLI(t, e.URL, cliToken, args...) }
	book := writeFile(t, "book.csv", "location,sku,qty\nA-01,X1,2\n")
	out := cli("stocktake", "open", "March", "--locations", "A-", "--expected", book).mustOK(t).stdout
	if got, want := out, "opened stocktake ST0001 \"March\" (locations A-, 1 book stock rows)\nST0001\n"; got != want {
		t.Fatalf("open: %q, want %q", got, want)
	}
	e.MustScan(t, "ST0001", "oA", "E001", "QR_CODE", "X1", "A-01", "ev1")

	dir := t.TempDir()
	path := filepath.Join(dir, "variance.csv")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli("scans", "export", "--stocktake", "ST0001", "--variance", "--output", path).mustOK(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "location,sku,name,expected,counted,difference\nA-01,X1,,2,1,-1\n"; got != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
	if got, want := r.stdout, fmt.Sprintf("wrote %s (%d bytes)\n", path, len(b)); got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	// XLSX to stdout is the file itself.
	r = cli("scans", "export", "--stocktake", "ST0001", "--format", "xlsx").mustOK(t)
	if !strings.HasPrefix(r.stdout, "PK\x03\x04") {
		t.Fatalf("xlsx on stdout starts %q", r.stdout[:min(len(r.stdout), 8)])
	}
	// A failed export leaves the file as it was and no temporary file.
	r = cli("scans", "export", "--stocktake", "ST0099", "--output", path)
	if r.code != 1 || r.stderr != "wxscan scans: 404 Not Found: stocktake ST0099 not found\n" {
		t.Fatalf("export unknown: exit %d, stderr %q", r.code, r.stderr)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Fatalf("a failed export changed the file to %q", b2)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
	for _, tt := range []struct{ args []string }{
		{[]string{"--summary", "--variance"}},
		{[]string{"--format", "xml"}},
	} {
		r := cli(append([]string{"scans", "export", "--stocktake", "ST0001"}, tt.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "usage: wxscan scans export") {
			t.Fatalf("%v: exit %d, stderr %q", tt.args, r.code, r.stderr)
		}
	}
}
