package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

const simulateUsage = `Usage: wxscan simulate <kind> [flags]

Plays the WeChat server against a callback URL with WXSCAN_TOKEN, WXSCAN_AES_KEY
and WXSCAN_APPID from the environment.

Kinds: subscribe, unsubscribe, scan --code CODE, text --content TEXT, location,
       click, view, echo (the URL check), load (a load test; see load --help),
       bind --employee NO --bind-code CODE (plays the staff member's phone on
       the /bind pages, through a fake WeChat authorize page)
`

// simFlags are the flags every simulate kind takes.
type simFlags struct {
	url, mode, openid, appid, account string
	token, aesKey                     string
}

func (f *simFlags) bind(fs *flag.FlagSet, getenv func(string) string) {
	server := getenv("WXSCAN_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&f.url, "url", strings.TrimRight(server, "/")+"/wechat/callback", "callback URL")
	fs.StringVar(&f.mode, "mode", "plain", "plain, compat or safe")
	fs.StringVar(&f.openid, "openid", "oSimUser0001", "the sender's openid")
	fs.StringVar(&f.appid, "appid", getenv("WXSCAN_APPID"), "the AppID (WXSCAN_APPID)")
	fs.StringVar(&f.account, "account", "gh_wxscan_sim", "the account's gh_ id (ToUserName)")
	f.token, f.aesKey = getenv("WXSCAN_TOKEN"), getenv("WXSCAN_AES_KEY")
}

func (f *simFlags) sim() (*wechatsim.Sim, error) {
	if f.token == "" {
		return nil, fmt.Errorf("WXSCAN_TOKEN is required (the Token the callback checks)")
	}
	return &wechatsim.Sim{URL: f.url, Token: f.token, AESKey: f.aesKey, AppID: f.appid, Mode: f.mode, Account: f.account}, nil
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, simulateUsage)
		return nil
	}
	kind, args := args[0], args[1:]
	if kind == "load" {
		return runLoad(ctx, args, stdout, stderr, getenv)
	}
	fs := flag.NewFlagSet("wxscan simulate "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f simFlags
	f.bind(fs, getenv)
	employee := fs.String("employee", "", "bind: the employee_no")
	bindCode := fs.String("bind-code", "", "bind: the bind_code")
	code := fs.String("code", "", "scan: the ScanResult, e.g. EAN_13,6901234567892 or LOC:A-01")
	content := fs.String("content", "", "text: the message")
	eventKey := fs.String("event-key", "", "the EventKey")
	retries := fs.Int("retries", 0, "send the very same request this many more times, as WeChat does")
	concurrent := fs.Bool("concurrent", false, "send the retries at the same time instead of one after another")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sim, err := f.sim()
	if err != nil {
		return err
	}
	if kind == "bind" {
		return simulateBind(ctx, f.openid, *employee, *bindCode, stdout, getenv)
	}
	if kind == "echo" {
		res, err := sim.Echo(ctx)
		fmt.Fprintf(stdout, "GET %d %s\n", res.Status, res.Body)
		return err
	}
	req, err := sim.Build(wechatsim.Push{Kind: kind, OpenID: f.openid, Code: *code, Content: *content, EventKey: *eventKey})
	if err != nil {
		return err
	}
	results, errs := sim.SendTimes(ctx, req, 1+max(*retries, 0), *concurrent)
	failed := false
	for i, res := range results {
		label := "request"
		if i > 0 {
			label = fmt.Sprintf("retry %d", i)
		}
		if errs[i] != nil {
			fmt.Fprintf(stdout, "%s: error: %v\n", label, errs[i])
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "%s: %d %s (%s)\n", label, res.Status, foldLine(res.Body), res.Latency.Round(time.Millisecond))
		if res.Reply != "" && f.mode == wechatsim.ModeSafe {
			fmt.Fprintf(stdout, "  decrypted reply: %s\n", foldLine(res.Reply))
		}
		failed = failed || res.Status != http.StatusOK
	}
	if failed {
		return fmt.Errorf("the callback did not accept the %s", kind)
	}
	return nil
}

const loadUsage = `Usage: wxscan simulate load [flags]

Sends distinct, valid, signed pushes of one kind at a given concurrency for a
given time and reports requests/s, p50/p99 latency and errors.

Without --url it starts its own wxscan in this process, in the default shape
(callback and workers, embedded NATS with JetStream on a temporary directory;
--roles callback for the callback alone), loads it, and checks that the stream
holds exactly one message per accepted event (and, for scans, that the workers
recorded each one).

It is a quick tool, not a comparison: its Go client shares the cores with the
server and cannot saturate a fast one, so it prints no ratio against a baseline.
For that, use the benchmark in bench/ (wrk against a bare handler, a peer
library and wxscan serve).
`

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("wxscan simulate load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	var f simFlags
	f.bind(fs, getenv)
	kind := fs.String("kind", "location", "location, scan, text, subscribe or click")
	conc := fs.Int("concurrency", 32, "requests in flight")
	dur := fs.Duration("duration", 5*time.Second, "how long each run lasts")
	rate := fs.Float64("rate", 0, "requests per second (0: as fast as answered)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	openids := fs.String("openids", "", "comma-separated senders, round robin (e.g. bound staff); default: a new openid per push")
	live := fs.Int("live-pages", 0, "self-hosted scan load with workers: keep this many console live pages of the stocktake open meanwhile")
	roles := fs.String("roles", "callback,workers", "self-hosted: the roles to run (the default shape; with workers, scans are recorded, with a fake WeChat API)")
	natsSync := fs.String("nats-sync", cmp.Or(getenv("WXSCAN_NATS_SYNC"), "1s"), "self-hosted: how often the embedded JetStream fsyncs, or always (WXSCAN_NATS_SYNC)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lc := wechatsim.LoadConfig{Kind: *kind, Concurrency: *conc, Duration: *dur, Rate: *rate}
	for _, o := range strings.Split(*openids, ",") {
		if o = strings.TrimSpace(o); o != "" {
			lc.OpenIDs = append(lc.OpenIDs, o)
		}
	}
	target := false
	fs.Visit(func(fl *flag.Flag) { target = target || fl.Name == "url" })
	if target {
		sim, err := f.sim()
		if err != nil {
			return err
		}
		rep, err := sim.Load(ctx, lc)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(rep)
		}
		fmt.Fprintf(stdout, "%s %s: %s\n", *kind, f.mode, rep)
		return nil
	}
	var rl []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rl = append(rl, r)
		}
	}
	interval, always, err := parseNATSSync(*natsSync)
	if err != nil {
		return err
	}
	res, cl, err := selfLoad(ctx, f.mode, lc, rl, *live, func(c *Config) { c.NATSSyncInterval, c.NATSSyncAlways = interval, always }, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			wechatsim.SelfLoad
			loadCost
		}{res, cl})
	}
	fmt.Fprintf(stdout, "roles: %s\n", strings.Join(rl, ","))
	res.WriteText(stdout, *kind, f.mode)
	cl.writeText(stdout, res.Scans)
	return res.Check()
}

// loadStaff is how many bound staff a self-hosted scan load scans as.
const loadStaff = 64

// selfLoad starts a wxscan of its own in this process (embedded NATS in a
// temporary directory, the given roles; with the workers, a fake WeChat API
// and bound staff with an open stocktake) and runs wechatsim.RunSelfLoad
// against it, set adjusting its configuration. With live > 0 (workers,
// scan load), that many console live pages of the open stocktake stay open
// meanwhile.
func selfLoad(ctx context.Context, mode string, lc wechatsim.LoadConfig, roles []string, live int, set func(*Config), stderr io.Writer) (_ wechatsim.SelfLoad, cost loadCost, _ error) {
	dir, err := os.MkdirTemp("", "wxscan-load-")
	if err != nil {
		return wechatsim.SelfLoad{}, cost, err
	}
	defer os.RemoveAll(dir)
	token, aesKey, appid := events.RandomHex(8), randomAESKey(), "wxload"+events.RandomHex(3)[:5]
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	m := NewMain()
	c := &m.Config
	c.Addr, c.DataDir, c.NATSListen, c.Roles = "127.0.0.1:0", dir, "off", roles
	set(c)
	c.AppID, c.Token, c.AESKey, c.AppSecret = appid, token, aesKey, "load-secret"
	c.PublicURL = "http://127.0.0.1"
	m.Logger = log
	workers := c.HasRole("workers")
	if workers {
		fake, ln, err := serveFake("127.0.0.1:0", fakewechat.Config{Logger: log})
		if err != nil {
			return wechatsim.SelfLoad{}, cost, err
		}
		defer fake.Close()
		c.APIBase, c.OAuthBase = "http://"+ln.Addr().String(), "http://"+ln.Addr().String()
		if lc.Kind == "scan" {
			lc.OpenIDs = prepareLoadStaff(dir)
			if lc.OpenIDs == nil {
				return wechatsim.SelfLoad{}, cost, fmt.Errorf("prepare load staff failed")
			}
		}
	}
	if live > 0 {
		c.AdminToken = events.RandomHex(16)
	}
	if err := c.Validate(); err != nil {
		return wechatsim.SelfLoad{}, cost, err
	}
	if err := m.Run(ctx); err != nil {
		return wechatsim.SelfLoad{}, cost, err
	}
	defer m.Close()
	if live > 0 && workers && lc.Kind == "scan" {
		stk, err := m.workers.db.OpenStocktakeNow()
		if err != nil {
			return wechatsim.SelfLoad{}, cost, err
		}
		pages, err := admin.OpenLivePages(ctx, "http://"+m.HTTPAddr(), c.AdminToken, stk.ID, live)
		if err != nil {
			return wechatsim.SelfLoad{}, cost, err
		}
		cost.LivePages = live
		defer pages.Close()
		defer func() { cost.LiveUpdates = pages.Updates() }()
	}

	target := wechatsim.Target{
		URL: "http://" + m.HTTPAddr() + "/wechat/callback",
		StreamMsgs: func(ctx context.Context) (uint64, error) {
			st, err := m.bus.JetStream().Stream(ctx, events.StreamName)
			if err != nil {
				return 0, err
			}
			info, err := st.Info(ctx)
			if err != nil {
				return 0, err
			}
			return info.State.Msgs, nil
		},
	}
	if workers && lc.Kind == "scan" {
		target.RecordedScans = func() (int, error) {
			stk, err := m.workers.db.OpenStocktakeNow()
			return stk.Scans, err
		}
	}
	var cpu time.Duration // at the start of the load on wxscan (after the baseline's)
	newSim := func(url string) *wechatsim.Sim {
		if url == target.URL {
			cpu = processCPU()
		}
		return &wechatsim.Sim{URL: url, Token: token, AESKey: aesKey, AppID: appid, Mode: mode}
	}
	res, err := wechatsim.RunSelfLoad(ctx, newSim, lc, target)
	if cpu > 0 {
		cost.CPU = processCPU() - cpu
	}
	return res, cost, err
}

// prepareLoadStaff binds loadStaff staff members and opens a stocktake in
// the store under dir, before the process takes it, and returns their
// openids.
func prepareLoadStaff(dir string) []string {
	db, err := store.Open(dbPath(dir), store.Options{})
	if err != nil {
		return nil
	}
	defer db.Close()
	staff := make([]store.Staff, loadStaff)
	openids := make([]string, loadStaff)
	for i := range staff {
		staff[i] = store.Staff{EmployeeNo: fmt.Sprintf("L%03d", i), Name: "load", BindCode: "load00", CanScan: true}
		openids[i] = fmt.Sprintf("oLoadStaff%03d", i)
	}
	if _, _, err := db.ImportStaff(staff); err != nil {
		return nil
	}
	for i, o := range openids {
		if _, err := db.Bind(o, staff[i].EmployeeNo, "", time.Now()); err != nil {
			return nil
		}
	}
	if _, err := db.OpenStocktake("load", time.Now()); err != nil {
		return nil
	}
	return openids
}

// randomAESKey returns a fresh 43-character EncodingAESKey.
func randomAESKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}

// simulateBind plays the staff member's phone through /bind.
func simulateBind(ctx context.Context, openid, employee, code string, stdout io.Writer, getenv func(string) string) error {
	if employee == "" || code == "" {
		return fmt.Errorf("bind needs --employee and --bind-code")
	}
	server := getenv("WXSCAN_SERVER")
	if server == "" {
		server = defaultServer
	}
	p := &wechatsim.Phone{Server: server}
	res, err := p.Bind(ctx, openid, employee, code)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "POST /bind: %d %s\n", res.Status, foldLine(res.Text()))
	if res.Status != http.StatusOK {
		return fmt.Errorf("binding refused (%d)", res.Status)
	}
	return nil
}

// foldLine keeps a page or answer on one short line for the terminal.
func foldLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
