package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// opDefaultServer is where the operator commands find `wxscan serve` when
// neither WXSCAN_SERVER nor --server says otherwise.
const opDefaultServer = "http://127.0.0.1:8080"

// operatorUsage is the usage line of each operator command.
var operatorUsage = map[string]string{
	"users":     "users import FILE.csv",
	"stocktake": "stocktake open NAME | close ID | list",
	"scans":     "scans export --stocktake ID [--format csv|json] [--summary]",
	"bindings":  "bindings list [--json] | remove OPENID",
	"menu":      "menu push",
	"dlq":       "dlq list | replay ID|--all",
	"status":    "status [--json]",
}

// runOperator runs the operator commands of SPEC §7 against the admin API of
// a running `wxscan serve` (WXSCAN_SERVER or --server, bearer token
// WXSCAN_ADMIN_TOKEN). Flags may come before or after the positional
// arguments. Data goes to stdout, as tab-separated lines after a header line,
// or as JSON with --json. A failure is returned as an error of one line that
// names the HTTP status and the API's message.
func runOperator(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	usage, ok := operatorUsage[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q (see wxscan help)", cmd)
	}
	o := &operator{stdout: stdout, usage: usage}
	fs := flag.NewFlagSet("wxscan "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wxscan %s [flags]\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	server := getenv("WXSCAN_SERVER")
	if server == "" {
		server = opDefaultServer
	}
	fs.StringVar(&server, "server", server, "base URL of a running wxscan serve (WXSCAN_SERVER)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
	var (
		stocktake string
		format    string
		summary   bool
		all       bool
	)
	switch cmd {
	case "scans":
		fs.StringVar(&stocktake, "stocktake", "", "the stocktake `ID` to export")
		fs.StringVar(&format, "format", "", "csv (default) or json")
		fs.BoolVar(&summary, "summary", false, "export the total per location and code")
	case "dlq":
		fs.BoolVar(&all, "all", false, "with replay: replay every dead letter")
	}
	pos, err := opParseFlags(fs, args)
	if err != nil {
		return err
	}
	if o.client, err = newAdminClient(server, getenv("WXSCAN_ADMIN_TOKEN")); err != nil {
		return err
	}
	sub := ""
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}

	switch {
	case cmd == "users" && sub == "import" && len(pos) == 1:
		return o.importUsers(ctx, pos[0])
	case cmd == "stocktake" && sub == "open" && len(pos) > 0:
		return o.openStocktake(ctx, strings.Join(pos, " "))
	case cmd == "stocktake" && sub == "close" && len(pos) == 1:
		return o.closeStocktake(ctx, pos[0])
	case cmd == "stocktake" && sub == "list" && len(pos) == 0:
		return o.listStocktakes(ctx)
	case cmd == "scans" && sub == "export" && len(pos) <= 1:
		if len(pos) == 1 && stocktake == "" {
			stocktake = pos[0]
		} else if len(pos) == 1 || stocktake == "" {
			return o.usageError("--stocktake ID is required")
		}
		return o.exportScans(ctx, stocktake, format, summary)
	case cmd == "bindings" && sub == "list" && len(pos) == 0:
		return o.listBindings(ctx)
	case cmd == "bindings" && sub == "remove" && len(pos) == 1:
		return o.removeBinding(ctx, pos[0])
	case cmd == "menu" && sub == "push" && len(pos) == 0:
		return o.pushMenu(ctx)
	case cmd == "dlq" && sub == "list" && len(pos) == 0 && !all:
		return o.listDLQ(ctx)
	case cmd == "dlq" && sub == "replay" && len(pos) == 0 && all:
		return o.replayAll(ctx)
	case cmd == "dlq" && sub == "replay" && len(pos) == 1 && !all:
		return o.replayOne(ctx, pos[0])
	case cmd == "status" && (sub == "" || sub == "show") && len(pos) == 0:
		return o.status(ctx)
	}
	return o.usageError("")
}

// opParseFlags parses fs's flags wherever they appear in args (before,
// between or after positional arguments; "--" ends them) and returns the
// positional arguments in order.
func opParseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs.Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

// operator runs one operator command.
type operator struct {
	client *adminClient
	stdout io.Writer
	json   bool
	usage  string
}

func (o *operator) usageError(why string) error {
	if why != "" {
		return fmt.Errorf("%s (usage: wxscan %s)", why, o.usage)
	}
	return fmt.Errorf("usage: wxscan %s", o.usage)
}

// printJSON prints an API answer as indented JSON.
func (o *operator) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := o.stdout.Write(buf.Bytes())
	return err
}

// printTable prints a header line and rows, fields separated by tabs (tabs
// and line breaks inside a field become spaces).
func (o *operator) printTable(header []string, rows [][]string) error {
	var b strings.Builder
	for _, row := range append([][]string{header}, rows...) {
		for i, f := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return ' '
				}
				return r
			}, f))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(o.stdout, b.String())
	return err
}

// opTime prints t in RFC 3339 (UTC), "-" for the zero time.
func opTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (o *operator) importUsers(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read staff CSV: %w", err)
	}
	defer f.Close()
	raw, err := o.client.call(ctx, http.MethodPost, "/admin/users/import", "text/csv; charset=utf-8", f)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(raw)
	}
	var res struct {
		Added   int `json:"added"`
		Updated int `json:"updated"`
	}
	if err := opDecode(raw, &res); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "added %d, updated %d\n", res.Added, res.Updated)
	return err
}

// opStocktake is the admin API's stocktake.
type opStocktake struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	State    string    `json:"state"`
	OpenedAt time.Time `json:"opened_at"`
	ClosedAt time.Time `json:"closed_at"`
	Scans    int       `json:"scans"`
}

func (o *operator) openStocktake(ctx context.Context, name string) error {
	body, _ := json.Marshal(struct {
		Name string `json:"name"`
	}{name})
	raw, err := o.client.call(ctx, http.MethodPost, "/admin/stocktakes", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(raw)
	}
	var st opStocktake
	if err := opDecode(raw, &st); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "opened stocktake %s %q\n%s\n", st.ID, st.Name, st.ID)
	return err
}

// fetch calls the admin API without a body. With --json it prints the
// answer as is and reports printed; otherwise it decodes the answer into v
// for the caller to format.
func (o *operator) fetch(ctx context.Context, method, path string, v any) (printed bool, err error) {
	raw, err := o.client.call(ctx, method, path, "", nil)
	if err != nil {
		return false, err
	}
	if o.json {
		return true, o.printJSON(raw)
	}
	return false, opDecode(raw, v)
}

func (o *operator) closeStocktake(ctx context.Context, id string) error {
	var st opStocktake
	if printed, err := o.fetch(ctx, http.MethodPost, "/admin/stocktakes/"+url.PathEscape(id)+"/close", &st); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.stdout, "closed stocktake %s %q: %d scans\n", st.ID, st.Name, st.Scans)
	return err
}

func (o *operator) listStocktakes(ctx context.Context) error {
	var list []opStocktake
	if printed, err := o.fetch(ctx, http.MethodGet, "/admin/stocktakes", &list); printed || err != nil {
		return err
	}
	rows := make([][]string, 0, len(list))
	for _, st := range list {
		rows = append(rows, []string{st.ID, st.Name, st.State, opTime(st.OpenedAt), opTime(st.ClosedAt), strconv.Itoa(st.Scans)})
	}
	return o.printTable([]string{"id", "name", "state", "opened_at", "closed_at", "scans"}, rows)
}

// exportScans copies the export to stdout exactly as the API streams it.
func (o *operator) exportScans(ctx context.Context, id, format string, summary bool) error {
	switch {
	case o.json && format != "" && format != "json":
		return o.usageError("--json and --format " + format + " disagree")
	case o.json:
		format = "json"
	case format == "":
		format = "csv"
	case format != "csv" && format != "json":
		return o.usageError("--format " + format + ": want csv or json")
	}
	q := url.Values{"format": {format}}
	if summary {
		q.Set("summary", "1")
	}
	resp, err := o.client.do(ctx, http.MethodGet, "/admin/stocktakes/"+url.PathEscape(id)+"/scans?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(o.stdout, resp.Body); err != nil {
		return fmt.Errorf("export cut short: %v", err)
	}
	return nil
}

func (o *operator) listBindings(ctx context.Context) error {
	raw, err := o.client.call(ctx, http.MethodGet, "/admin/bindings", "", nil)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(raw)
	}
	var list []struct {
		OpenID     string    `json:"openid"`
		EmployeeNo string    `json:"employee_no"`
		Name       string    `json:"name"`
		State      string    `json:"state"`
		BoundAt    time.Time `json:"bound_at"`
	}
	if err := opDecode(raw, &list); err != nil {
		return err
	}
	rows := make([][]string, 0, len(list))
	for _, b := range list {
		rows = append(rows, []string{b.OpenID, b.EmployeeNo, b.Name, b.State, opTime(b.BoundAt)})
	}
	return o.printTable([]string{"openid", "employee_no", "name", "state", "bound_at"}, rows)
}

func (o *operator) removeBinding(ctx context.Context, openid string) error {
	if _, err := o.client.call(ctx, http.MethodDelete, "/admin/bindings/"+url.PathEscape(openid), "", nil); err != nil {
		return err
	}
	if o.json {
		return o.printJSON(opMustJSON(map[string]string{"removed": openid}))
	}
	_, err := fmt.Fprintf(o.stdout, "removed binding %s\n", openid)
	return err
}

func (o *operator) pushMenu(ctx context.Context) error {
	var menu struct {
		Button []struct {
			Type string `json:"type"`
			Name string `json:"name"`
			Key  string `json:"key"`
			URL  string `json:"url"`
		} `json:"button"`
	}
	if printed, err := o.fetch(ctx, http.MethodPost, "/admin/menu", &menu); printed || err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pushed the menu (%d buttons)\n", len(menu.Button))
	for _, btn := range menu.Button {
		target := btn.URL
		if target == "" {
			target = btn.Key
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", btn.Name, btn.Type, target)
	}
	_, err := io.WriteString(o.stdout, b.String())
	return err
}

// opDeadLetter is the admin API's dead letter.
type opDeadLetter struct {
	ID          uint64    `json:"id"`
	EventID     string    `json:"event_id"`
	Subject     string    `json:"subject"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	FirstFailed time.Time `json:"first_failed_at"`
}

func (o *operator) listDLQ(ctx context.Context) error {
	var list []opDeadLetter
	if printed, err := o.fetch(ctx, http.MethodGet, "/admin/dlq", &list); printed || err != nil {
		return err
	}
	rows := make([][]string, 0, len(list))
	for _, d := range list {
		rows = append(rows, []string{strconv.FormatUint(d.ID, 10), d.Subject, d.Reason, strconv.Itoa(d.Attempts), opTime(d.FirstFailed)})
	}
	return o.printTable([]string{"id", "subject", "reason", "attempts", "first_failed_at"}, rows)
}

func (o *operator) replayOne(ctx context.Context, id string) error {
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return o.usageError(fmt.Sprintf("dead letter id %q is not a number", id))
	}
	var d opDeadLetter
	if printed, err := o.fetch(ctx, http.MethodPost, "/admin/dlq/"+id+"/replay", &d); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.stdout, "replayed dead letter %d (event %s) onto %s\n", d.ID, d.EventID, d.Subject)
	return err
}

func (o *operator) replayAll(ctx context.Context) error {
	var res struct {
		Replayed int `json:"replayed"`
	}
	if printed, err := o.fetch(ctx, http.MethodPost, "/admin/dlq/replay", &res); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.stdout, "replayed %d dead letters\n", res.Replayed)
	return err
}

// opStatusKeys is the order status prints the admin API's fields in; fields
// the server adds later follow, sorted.
var opStatusKeys = []string{"stream_msgs", "stream_bytes", "dlq_msgs", "consumer_pending", "consumer_ack_pending",
	"consumer_redelivered", "last_token_refresh", "token_refreshes", "scans_today", "outbox"}

func (o *operator) status(ctx context.Context) error {
	var m map[string]json.RawMessage
	if printed, err := o.fetch(ctx, http.MethodGet, "/admin/status", &m); printed || err != nil {
		return err
	}
	keys := []string{}
	for _, k := range opStatusKeys {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	var extra []string
	for k := range m {
		if !slices.Contains(opStatusKeys, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	var b strings.Builder
	for _, k := range append(keys, extra...) {
		v := string(m[k])
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			v = s
		}
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	_, err := io.WriteString(o.stdout, b.String())
	return err
}

func opMustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func opDecode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("the server's answer is not what this wxscan expects: %v", err)
	}
	return nil
}

// adminClient is a client of the admin API.
type adminClient struct {
	base  string // e.g. http://127.0.0.1:8080, without a trailing slash
	token string
	hc    *http.Client
}

func newAdminClient(server, token string) (*adminClient, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("WXSCAN_SERVER (--server) %q: want a URL like %s", server, opDefaultServer)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 2 * time.Minute
	return &adminClient{base: u.String(), token: token, hc: &http.Client{Transport: tr}}, nil
}

// call sends one request and returns the whole body of a 2xx answer.
func (c *adminClient) call(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	resp, err := c.do(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %v", c.base, err)
	}
	return raw, nil
}

// do sends one request and returns a 2xx response, whose body the caller
// closes. Any other outcome is an error of one line.
func (c *adminClient) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json, text/csv")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, c.statusError(resp, raw)
}

func (c *adminClient) transportError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach wxscan at %s (is `wxscan serve` running?)", c.base)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach wxscan at %s: %s", c.base, opOneLine(err.Error()))
}

// statusError explains a non-2xx answer in one line.
func (c *adminClient) statusError(resp *http.Response, raw []byte) error {
	var body struct {
		Error string `json:"error"`
	}
	isAPIError := json.Unmarshal(raw, &body) == nil && body.Error != ""
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if c.token == "" {
			return errors.New("unauthorized: check WXSCAN_ADMIN_TOKEN (it is not set here)")
		}
		return errors.New("unauthorized: check WXSCAN_ADMIN_TOKEN")
	case resp.StatusCode == http.StatusNotFound && (resp.Header.Get("Wxscan-Admin") == "off" || !isAPIError):
		return errors.New("admin API is off: set WXSCAN_ADMIN_TOKEN on the server")
	}
	msg := body.Error
	if !isAPIError {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
	}
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if msg == "" {
		return errors.New(status)
	}
	return fmt.Errorf("%s: %s", status, opOneLine(msg))
}

// opOneLine folds line breaks and runs of spaces so that a message stays one
// line.
func opOneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
