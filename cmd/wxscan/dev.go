package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// The dev settings: fixed, so the printed commands work as they are. Never
// use them for a real account.
const (
	devAppID      = "wxdev00000000000"
	devAppSecret  = "dev-appsecret"
	devToken      = "devtoken"
	devAESKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	devAdminToken = "dev-admin-token"
)

// devStaffCSV is the sample staff directory `wxscan dev` imports through
// the admin API, as an operator would.
const devStaffCSV = `employee_no,name,bind_code,can_scan
E001,张三,111111,true
E002,李四,222222,true
E003,王五,333333,false
`

// runFakeWeChat serves the fake WeChat API until ctx ends.
func runFakeWeChat(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("wxscan fakewechat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	appid := fs.String("appid", getenv("WXSCAN_APPID"), "the AppID it accepts (WXSCAN_APPID; empty: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, "info", "text")
	srv, ln, err := serveFake(*addr, fakewechat.Config{AppID: *appid, AppSecret: getenv("WXSCAN_APPSECRET"), Logger: log})
	if err != nil {
		return err
	}
	log.Info("fake WeChat API listening", "url", "http://"+ln.Addr().String())
	<-ctx.Done()
	return srv.Close()
}

func serveFake(addr string, cfg fakewechat.Config) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("fake wechat listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: fakewechat.New(cfg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("fake wechat", "err", err)
		}
	}()
	return srv, ln, nil
}

// runDev starts serve and the fake WeChat API together, with a sample staff
// directory, and prints what to try.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	m := NewMain()
	m.Getenv, m.Stderr = getenv, stderr
	fakeAddr := "127.0.0.1:8081"
	c := &m.Config
	c.Addr = "127.0.0.1:8080"
	c.LogFormat = "text"
	c.AppID, c.AppSecret, c.Token, c.AESKey, c.AdminToken = devAppID, devAppSecret, devToken, devAESKey, devAdminToken
	fs := flag.NewFlagSet("wxscan dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	post := c.bind(fs, getenv)
	fs.StringVar(&fakeAddr, "fake-addr", fakeAddr, "where the fake WeChat API listens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range *post {
		if err := f(); err != nil {
			return err
		}
	}
	log := newLogger(stderr, c.LogLevel, c.LogFormat)
	m.Logger = log
	fake, ln, err := serveFake(fakeAddr, fakewechat.Config{AppID: c.AppID, AppSecret: c.AppSecret, Logger: log})
	if err != nil {
		return err
	}
	defer fake.Close()
	fakeURL := "http://" + ln.Addr().String()
	c.APIBase, c.OAuthBase = fakeURL, fakeURL
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()
	if m.workers != nil && c.AdminToken != "" {
		client, err := admin.NewClient("http://"+m.HTTPAddr(), c.AdminToken)
		if err != nil {
			return err
		}
		res, err := client.ImportUsers(ctx, strings.NewReader(devStaffCSV), "")
		if err != nil {
			return fmt.Errorf("import sample staff: %w", err)
		}
		log.Info("sample staff imported", "added", res.Added, "updated", res.Updated)
	}
	fmt.Fprintf(stdout, devBanner, c.PublicURL, "http://"+m.HTTPAddr(), fakeURL, "http://"+m.HTTPAddr(), c.AdminToken, c.DataDir,
		"http://"+m.HTTPAddr(), c.AdminToken, c.Token, c.AESKey, c.AppID, c.PublicURL)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

const devBanner = `
wxscan dev is running (Ctrl-C to stop): callback, workers, embedded NATS and a fake WeChat API.
  public URL     %s
  listening on   %s   (WeChat callback at /wechat/callback)
  fake WeChat    %s
  console        %s/console/   (sign in with the admin token %s)
  data dir       %s
Sample staff: E001 张三 (bind code 111111), E002 李四 (222222), E003 王五 (333333, may not scan).

Try the whole flow from another terminal, in this repository (or run
"go install ./cmd/wxscan" once and type wxscan instead of go run ./cmd/wxscan):
  export WXSCAN_SERVER=%s WXSCAN_ADMIN_TOKEN=%s
  export WXSCAN_TOKEN=%s WXSCAN_AES_KEY=%s WXSCAN_APPID=%s
  go run ./cmd/wxscan simulate subscribe --openid oDevUser0001
  go run ./cmd/wxscan simulate bind --openid oDevUser0001 --employee E001 --bind-code 111111
      (or open %s/bind in a browser: you are the fake user oDevUser0001)
  go run ./cmd/wxscan stocktake open "Warehouse A"
  go run ./cmd/wxscan simulate scan --openid oDevUser0001 --code QR_CODE,LOC:A-01
  go run ./cmd/wxscan simulate scan --openid oDevUser0001 --code EAN_13,6901234567892 --mode safe
  go run ./cmd/wxscan scans export --stocktake ST0001
  go run ./cmd/wxscan scans export --stocktake ST0001 --summary
`
