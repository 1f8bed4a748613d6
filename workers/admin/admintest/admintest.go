// Package admintest runs a real admin API for tests of any package: a bbolt
// store in a temporary directory, an embedded NATS with the streams, the fake
// WeChat API and the admin handler, all over loopback HTTP. Nothing is mocked.
package admintest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/fakewechat"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// PublicURL is the WXSCAN_PUBLIC_URL of the servers MustServer starts.
const PublicURL = "https://wxscan.example.com"

// Env is a running admin API and the real parts behind it.
type Env struct {
	URL    string // the HTTP server's base URL; the API is under URL+"/admin/"
	Token  string
	DB     *store.DB
	Bus    *events.Bus
	Fake   *fakewechat.Server
	WeChat *wechatapi.Client
	Clock  *Clock
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock's time.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// MustServer starts an admin API with token (empty: the API is off) and
// stops everything at cleanup. The clock starts at 2025-03-01 10:00 in
// Asia/Shanghai (02:00 UTC).
func MustServer(tb testing.TB, token string) *Env {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	bus := eventstest.MustBus(tb, nil)
	fake := fakewechat.New(fakewechat.Config{AppID: eventstest.AppID, AppSecret: "adminsecret"})
	fakeSrv := httptest.NewServer(fake)
	tb.Cleanup(fakeSrv.Close)
	wx, err := wechatapi.New(wechatapi.Config{BaseURL: fakeSrv.URL, AppID: eventstest.AppID, AppSecret: "adminsecret", Cache: db})
	if err != nil {
		tb.Fatal(err)
	}
	clock := &Clock{t: time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)}
	h := admin.New(admin.Config{
		Token: token, DB: db, Bus: bus, WeChat: wx, PublicURL: PublicURL + "/",
		Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &Env{URL: srv.URL, Token: token, DB: db, Bus: bus, Fake: fake, WeChat: wx, Clock: clock}
}

// MustImport imports staff rows directly into the store.
func (e *Env) MustImport(tb testing.TB, rows ...store.Staff) {
	tb.Helper()
	if _, _, err := e.DB.ImportStaff(rows); err != nil {
		tb.Fatal(err)
	}
}

// MustScan records a scan of qty 1 in stocktake id, at the clock's time.
func (e *Env) MustScan(tb testing.TB, id, openid, employeeNo, codeType, code, location, eventID string) {
	tb.Helper()
	err := e.DB.Update(func(tx *store.Tx) error {
		_, err := tx.RecordScan(store.Scan{
			StocktakeID: id, OpenID: openid, EmployeeNo: employeeNo, CodeType: codeType, Code: code,
			Location: location, Qty: 1, ScannedAt: e.Clock.Now(), EventID: eventID,
		})
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// MustDeadLetter puts a dead letter for a text message with event id into
// WECHAT_DLQ, as the consumer does after giving up.
func (e *Env) MustDeadLetter(tb testing.TB, eventID, reason string, attempts int, firstFailed time.Time) {
	tb.Helper()
	ev := events.Event{V: events.Version, ID: eventID, AppID: eventstest.AppID, From: "oUser", MsgType: "text",
		Content: "hello", MsgID: eventID, ReceivedAt: firstFailed, XML: "<xml/>"}
	data, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	m := &nats.Msg{Subject: events.DLQPrefix + ev.Subject(), Data: data, Header: nats.Header{}}
	m.Header.Set(events.HeaderDLQReason, reason)
	m.Header.Set(events.HeaderDLQAttempts, strconv.Itoa(attempts))
	m.Header.Set(events.HeaderDLQFirstFailed, firstFailed.UTC().Format(time.RFC3339))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Bus.JetStream().PublishMsg(ctx, m); err != nil {
		tb.Fatal(err)
	}
}
