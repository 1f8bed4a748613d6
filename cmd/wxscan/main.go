// Command wxscan runs a WeChat Official Account's callback and the
// stocktake workers behind it, and is the operator's command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the zone data for WXSCAN_TIMEZONE in a minimal container
)

const usage = `wxscan: WeChat stocktake scanning (callback, workers, operator tools)

Usage: wxscan <command> [flags]

Service:
  serve        run the callback and/or workers (WXSCAN_* settings, see --help)
  dev          run serve with a fake WeChat API and sample staff, for a first look
  fakewechat   serve a fake WeChat API (token, oauth2, custom send, menu, ticket)
  simulate     play the WeChat server against a callback URL (and load-test it)

Operator (a thin client of the admin API at WXSCAN_SERVER, default
http://127.0.0.1:8080, with WXSCAN_ADMIN_TOKEN; every one takes --server URL
and --json):
  users import FILE | list | unlock EMPLOYEE_NO
  items import FILE
  stocktake open NAME [--locations PREFIX,...] [--expected FILE] | close ID | list
  scans export --stocktake ID [--format csv|json|xlsx] [--summary|--variance] [--output FILE]
  bindings list | remove OPENID | unlock OPENID
  menu push
  dlq list | replay ID|--all
  status
  backup FILE [--force]   a copy of the database; refuses an existing FILE unless --force
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run dispatches one command line and returns the exit code. Failures print
// one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, stderr, getenv)
	case "dev":
		err = runDev(ctx, rest, stdout, stderr, getenv)
	case "fakewechat":
		err = runFakeWeChat(ctx, rest, stderr, getenv)
	case "simulate":
		err = runSimulate(ctx, rest, stdout, stderr, getenv)
	default:
		err = runOperator(ctx, cmd, rest, stdout, stderr, getenv)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "wxscan %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// runServe runs the service until ctx ends (SIGINT/SIGTERM).
func runServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	m := NewMain()
	m.Getenv, m.Stderr = getenv, stderr
	if err := m.ParseFlags(ctx, args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}
