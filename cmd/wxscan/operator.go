package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/workers/admin"
)

// defaultServer is where the operator commands (and simulate) find
// `wxscan serve` when neither WXSCAN_SERVER nor --server says otherwise.
const defaultServer = "http://127.0.0.1:8080"

// opCmd is one operator command: the words after its group's, and what it
// does. A new command is one entry in opGroups.
type opCmd struct {
	sub   string // e.g. "import"; "" for a group that is one command (status)
	usage string // what follows the words, e.g. "FILE" or "OPENID"
	// bind registers the command's own flags on fs (shared by its group,
	// so that flags may come before the command's word) and returns what
	// runs it with the positional arguments after the words.
	bind func(fs *flag.FlagSet) func(ctx context.Context, o *op, args []string) error
}

// opGroups are the operator commands of SPEC §7, by their first word.
var opGroups = map[string][]opCmd{
	"users": {
		{sub: "import", usage: "FILE", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.importUsers(ctx, args)
		})},
		{sub: "list", usage: "[--json]", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.listUsers(ctx, args)
		})},
		{sub: "unlock", usage: "EMPLOYEE_NO", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.unlockUser(ctx, args)
		})},
	},
	"items": {
		{sub: "import", usage: "FILE", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.importItems(ctx, args)
		})},
	},
	"stocktake": {
		{sub: "open", usage: "NAME [--locations PREFIX,...] [--expected FILE]", bind: bindOpen},
		{sub: "close", usage: "ID", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.closeStocktake(ctx, args)
		})},
		{sub: "list", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.listStocktakes(ctx, args)
		})},
	},
	"scans": {
		{sub: "export", usage: "--stocktake ID [--format csv|json|xlsx] [--summary|--variance] [--output FILE]", bind: bindExport},
	},
	"bindings": {
		{sub: "list", usage: "[--json]", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.listBindings(ctx, args)
		})},
		{sub: "remove", usage: "OPENID", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.removeBinding(ctx, args)
		})},
		{sub: "unlock", usage: "OPENID", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.unlockOpenID(ctx, args)
		})},
	},
	"menu": {
		{sub: "push", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.pushMenu(ctx, args)
		})},
	},
	"dlq": {
		{sub: "list", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.listDLQ(ctx, args)
		})},
		{sub: "replay", usage: "ID|--all", bind: bindReplay},
	},
	"status": {
		{usage: "[--json]", bind: noFlags(func(ctx context.Context, o *op, args []string) error {
			return o.status(ctx, args)
		})},
	},
	"backup": {
		{usage: "FILE [--force]", bind: bindBackup},
	},
}

// noFlags is the bind of a command without flags of its own.
func noFlags(run func(ctx context.Context, o *op, args []string) error) func(*flag.FlagSet) func(context.Context, *op, []string) error {
	return func(*flag.FlagSet) func(context.Context, *op, []string) error { return run }
}

// opUsage is the usage line of a group: its commands separated by " | ".
func opUsage(group string) string {
	var parts []string
	for _, c := range opGroups[group] {
		parts = append(parts, strings.TrimSpace(c.sub+" "+c.usage))
	}
	return strings.TrimSpace(group + " " + strings.Join(parts, " | "))
}

// runOperator runs the operator commands of SPEC §7 against the admin API of
// a running `wxscan serve` (WXSCAN_SERVER or --server, bearer token
// WXSCAN_ADMIN_TOKEN) through admin.Client. Flags may come before or after
// the positional arguments. Data goes to stdout, as tab-separated lines
// after a header line, or as JSON with --json. A failure is returned as an
// error of one line.
func runOperator(ctx context.Context, group string, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cmds, ok := opGroups[group]
	if !ok {
		return fmt.Errorf("unknown command %q (see wxscan help)", group)
	}
	o := &op{stdout: stdout, usage: opUsage(group)}
	fs := flag.NewFlagSet("wxscan "+group, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wxscan %s [flags]\n\nFlags:\n", o.usage)
		fs.PrintDefaults()
	}
	server := getenv("WXSCAN_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&server, "server", server, "base URL of a running wxscan serve (WXSCAN_SERVER)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
	runs := make([]func(context.Context, *op, []string) error, len(cmds))
	for i, c := range cmds {
		runs[i] = c.bind(fs)
	}
	pos, err := opParseFlags(fs, args)
	if err != nil {
		return err
	}
	if o.client, err = admin.NewClient(server, getenv("WXSCAN_ADMIN_TOKEN")); err != nil {
		return fmt.Errorf("WXSCAN_SERVER (--server) %q: want a URL like %s", server, defaultServer)
	}
	for i, c := range cmds {
		if c.sub == "" {
			return runs[i](ctx, o, pos)
		}
		if len(pos) > 0 && pos[0] == c.sub {
			return runs[i](ctx, o, pos[1:])
		}
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

// op runs one operator command: it holds the client and prints.
type op struct {
	client *admin.Client
	stdout io.Writer
	json   bool
	usage  string
}

func (o *op) usageError(why string) error {
	if why != "" {
		return fmt.Errorf("%s (usage: wxscan %s)", why, o.usage)
	}
	return fmt.Errorf("usage: wxscan %s", o.usage)
}

// nargs fails with the usage unless args has exactly n entries.
func (o *op) nargs(args []string, n int) error {
	if len(args) != n {
		return o.usageError("")
	}
	return nil
}

// print prints v as indented JSON with --json, else what text writes.
func (o *op) print(v any, text func(w io.Writer) error) error {
	if !o.json {
		return text(o.stdout)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = o.stdout.Write(append(b, '\n'))
	return err
}

// printTable prints a header line and rows, fields separated by tabs (tabs
// and line breaks inside a field become spaces).
func printTable(w io.Writer, header []string, rows [][]string) error {
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
	_, err := io.WriteString(w, b.String())
	return err
}

// opTime prints t in RFC 3339 (UTC), "-" for the zero time.
func opTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (o *op) importUsers(ctx context.Context, args []string) error {
	return o.importFile(ctx, args, "staff", o.client.ImportUsers)
}

func (o *op) importItems(ctx context.Context, args []string) error {
	return o.importFile(ctx, args, "items", o.client.ImportItems)
}

func (o *op) closeStocktake(ctx context.Context, args []string) error {
	if err := o.nargs(args, 1); err != nil {
		return err
	}
	st, err := o.client.CloseStocktake(ctx, args[0])
	if err != nil {
		return err
	}
	return o.print(st, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "closed stocktake %s %q: %d scans\n", st.ID, st.Name, st.Scans)
		return err
	})
}

func (o *op) listStocktakes(ctx context.Context, args []string) error {
	if err := o.nargs(args, 0); err != nil {
		return err
	}
	list, err := o.client.Stocktakes(ctx)
	if err != nil {
		return err
	}
	return o.print(list, func(w io.Writer) error {
		rows := make([][]string, 0, len(list))
		for _, st := range list {
			locs := "*"
			if len(st.Locations) > 0 {
				locs = strings.Join(st.Locations, ",")
			}
			rows = append(rows, []string{st.ID, st.Name, st.State, locs, strconv.Itoa(st.ExpectedRows),
				opTime(st.OpenedAt), opTime(st.ClosedAt), strconv.Itoa(st.Scans)})
		}
		return printTable(w, []string{"id", "name", "state", "locations", "expected_rows", "opened_at", "closed_at", "scans"}, rows)
	})
}

func (o *op) listBindings(ctx context.Context, args []string) error {
	if err := o.nargs(args, 0); err != nil {
		return err
	}
	list, err := o.client.Bindings(ctx)
	if err != nil {
		return err
	}
	return o.print(list, func(w io.Writer) error {
		rows := make([][]string, 0, len(list))
		for _, b := range list {
			rows = append(rows, []string{b.OpenID, b.EmployeeNo, b.Name, b.State, opTime(b.BoundAt)})
		}
		return printTable(w, []string{"openid", "employee_no", "name", "state", "bound_at"}, rows)
	})
}

func (o *op) removeBinding(ctx context.Context, args []string) error {
	if err := o.nargs(args, 1); err != nil {
		return err
	}
	if err := o.client.RemoveBinding(ctx, args[0]); err != nil {
		return err
	}
	return o.print(map[string]string{"removed": args[0]}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "removed binding %s\n", args[0])
		return err
	})
}

func (o *op) pushMenu(ctx context.Context, args []string) error {
	if err := o.nargs(args, 0); err != nil {
		return err
	}
	menu, err := o.client.PushMenu(ctx)
	if err != nil {
		return err
	}
	return o.print(menu, func(w io.Writer) error {
		var b strings.Builder
		fmt.Fprintf(&b, "pushed the menu (%d buttons)\n", len(menu.Buttons))
		for _, btn := range menu.Buttons {
			target := btn.URL
			if target == "" {
				target = btn.Key
			}
			fmt.Fprintf(&b, "%s\t%s\t%s\n", btn.Name, btn.Type, target)
		}
		_, err := io.WriteString(w, b.String())
		return err
	})
}

func (o *op) listDLQ(ctx context.Context, args []string) error {
	if err := o.nargs(args, 0); err != nil {
		return err
	}
	list, err := o.client.DLQ(ctx)
	if err != nil {
		return err
	}
	return o.print(list, func(w io.Writer) error {
		rows := make([][]string, 0, len(list))
		for _, d := range list {
			rows = append(rows, []string{strconv.FormatUint(d.ID, 10), d.Subject, d.Reason, strconv.Itoa(d.Attempts), opTime(d.FirstFailed)})
		}
		return printTable(w, []string{"id", "subject", "reason", "attempts", "first_failed_at"}, rows)
	})
}

// bindReplay is dlq replay ID|--all.
func bindReplay(fs *flag.FlagSet) func(context.Context, *op, []string) error {
	all := fs.Bool("all", false, "with replay: replay every dead letter")
	return func(ctx context.Context, o *op, args []string) error {
		if *all {
			if err := o.nargs(args, 0); err != nil {
				return err
			}
			res, err := o.client.ReplayAll(ctx)
			if err != nil {
				return err
			}
			return o.print(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "replayed %d dead letters\n", res.Replayed)
				return err
			})
		}
		if err := o.nargs(args, 1); err != nil {
			return err
		}
		id, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			return o.usageError(fmt.Sprintf("dead letter id %q is not a number", args[0]))
		}
		d, err := o.client.Replay(ctx, id)
		if err != nil {
			return err
		}
		return o.print(d, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "replayed dead letter %d (event %s) onto %s\n", d.ID, d.EventID, d.Subject)
			return err
		})
	}
}

func (o *op) status(ctx context.Context, args []string) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "show") {
		return o.usageError("")
	}
	st, err := o.client.Status(ctx)
	if err != nil {
		return err
	}
	return o.print(st, func(w io.Writer) error {
		var b strings.Builder
		line := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
		line("stream_msgs", st.StreamMsgs)
		line("stream_bytes", st.StreamBytes)
		line("dlq_msgs", st.DLQMsgs)
		line("consumer_pending", st.ConsumerPending)
		line("consumer_ack_pending", st.ConsumerAckPending)
		line("consumer_redelivered", st.ConsumerRedelivered)
		if st.LastTokenRefresh != nil {
			line("last_token_refresh", st.LastTokenRefresh.UTC().Format(time.RFC3339Nano))
		}
		if st.TokenRefreshes != nil {
			line("token_refreshes", *st.TokenRefreshes)
		}
		line("scans_today", st.ScansToday)
		line("outbox", st.Outbox)
		_, err := io.WriteString(w, b.String())
		return err
	})
}
