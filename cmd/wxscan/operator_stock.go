package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wxscan/wxscan/workers/admin"
)

// The operator commands of the stocktake against book stock (SPEC §9) and
// of the staff directory's bindings and lockouts (SPEC §7, §11).

// importFile sends the file args[0] (CSV or XLSX, which the server tells
// apart) with send and prints the counts.
func (o *op) importFile(ctx context.Context, args []string, what string,
	send func(context.Context, io.Reader, string) (admin.ImportResult, error)) error {
	if err := o.nargs(args, 1); err != nil {
		return err
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("read %s file: %w", what, err)
	}
	defer f.Close()
	res, err := send(ctx, f, fileType(args[0]))
	if err != nil {
		return err
	}
	return o.print(res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "added %d, updated %d\n", res.Added, res.Updated)
		return err
	})
}

// fileType is the media type of an upload named path: XLSX by its
// extension, else CSV ("": the client's default).
func fileType(path string) string {
	if strings.EqualFold(filepath.Ext(path), ".xlsx") {
		return admin.FormatXLSX.ContentType()
	}
	return ""
}

// bindOpen is stocktake open NAME [--locations PREFIX,...] [--expected
// FILE]: it prints the new stocktake's id alone on its last line.
func bindOpen(fs *flag.FlagSet) func(context.Context, *op, []string) error {
	locations := fs.String("locations", "", "open: the location `PREFIX`es of the scope, separated by commas (default: every location)")
	expected := fs.String("expected", "", "open: the book stock `FILE` (CSV or XLSX: location,sku,qty)")
	return func(ctx context.Context, o *op, args []string) error {
		if len(args) == 0 {
			return o.usageError("")
		}
		req := admin.OpenStocktakeRequest{Name: strings.Join(args, " "), Locations: admin.SplitLocations(*locations)}
		if *expected != "" {
			f, err := os.Open(*expected)
			if err != nil {
				return fmt.Errorf("read book stock file: %w", err)
			}
			defer f.Close()
			req.Expected = f
		}
		st, err := o.client.OpenStocktake(ctx, req)
		if err != nil {
			return err
		}
		return o.print(st, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "opened stocktake %s %q (%s, %d book stock rows)\n%s\n",
				st.ID, st.Name, scopeText(st.Locations), st.ExpectedRows, st.ID)
			return err
		})
	}
}

// scopeText is a stocktake's scope for the operator.
func scopeText(locations []string) string {
	if len(locations) == 0 {
		return "all locations"
	}
	return "locations " + strings.Join(locations, ",")
}

// bindExport is scans export: it copies the export exactly as the API
// streams it, to stdout or, with --output, to a file written whole or not at
// all.
func bindExport(fs *flag.FlagSet) func(context.Context, *op, []string) error {
	stocktake := fs.String("stocktake", "", "the stocktake `ID` to export")
	format := fs.String("format", "", "csv (default), json or xlsx")
	summary := fs.Bool("summary", false, "export the total per location and code")
	variance := fs.Bool("variance", false, "export the count against the book stock")
	output := fs.String("output", "", "write the export to `FILE` (replaced whole) instead of standard output")
	return func(ctx context.Context, o *op, args []string) error {
		id := *stocktake
		switch {
		case len(args) == 1 && id == "":
			id = args[0]
		case len(args) > 0 || id == "":
			return o.usageError("--stocktake ID is required")
		}
		opts := admin.ExportOptions{Format: strings.ToLower(*format), Summary: *summary, Variance: *variance}
		switch {
		case opts.Summary && opts.Variance:
			return o.usageError("--summary and --variance: choose one")
		case o.json && opts.Format != "" && opts.Format != "json":
			return o.usageError("--json and --format " + opts.Format + " disagree")
		case o.json:
			opts.Format = "json"
		case opts.Format != "" && opts.Format != "csv" && opts.Format != "json" && opts.Format != "xlsx":
			return o.usageError("--format " + opts.Format + ": want csv, json or xlsx")
		}
		if *output == "" {
			return o.client.ExportScans(ctx, id, opts, o.stdout)
		}
		n, err := writeFileAtomic(*output, true, func(w io.Writer) error {
			return o.client.ExportScans(ctx, id, opts, w)
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.stdout, "wrote %s (%d bytes)\n", *output, n)
		return err
	}
}

func (o *op) listUsers(ctx context.Context, args []string) error {
	if err := o.nargs(args, 0); err != nil {
		return err
	}
	list, err := o.client.Users(ctx)
	if err != nil {
		return err
	}
	return o.print(list, func(w io.Writer) error {
		rows := make([][]string, 0, len(list))
		for _, u := range list {
			openid := u.OpenID
			if openid == "" {
				openid = "-"
			}
			rows = append(rows, []string{u.EmployeeNo, u.Name, strconv.FormatBool(u.CanScan), u.State, openid,
				opTime(u.BoundAt), strconv.Itoa(u.BindFailures), opTime(u.LockedUntil)})
		}
		return printTable(w, []string{"employee_no", "name", "can_scan", "state", "openid", "bound_at", "bind_failures", "locked_until"}, rows)
	})
}

func (o *op) unlockUser(ctx context.Context, args []string) error {
	if err := o.nargs(args, 1); err != nil {
		return err
	}
	u, err := o.client.UnlockUser(ctx, args[0])
	if err != nil {
		return err
	}
	return o.print(u, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "unlocked %s (%s)\n", u.EmployeeNo, u.Name)
		return err
	})
}

func (o *op) unlockOpenID(ctx context.Context, args []string) error {
	if err := o.nargs(args, 1); err != nil {
		return err
	}
	if err := o.client.UnlockOpenID(ctx, args[0]); err != nil {
		return err
	}
	return o.print(map[string]string{"unlocked": args[0]}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "unlocked openid %s\n", args[0])
		return err
	})
}
