package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers"
	"github.com/wxscan/wxscan/workers/admin"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// workersRole is the workers side of a process: the store it owns, the
// WeChat API client, the consumers and the admin API.
type workersRole struct {
	cfg Config
	log *slog.Logger
	db  *store.DB
	wx  *wechatapi.Client
	svc *workers.Service
	// console is the operator console, served beside the admin API.
	console *admin.Console
	// consumer tunes the durable consumer (tests shorten AckWait).
	consumer events.ConsumerConfig
}

// idleRelease is how long the workers' consumer waits, idle after a burst,
// before handing the memory the burst used back to the system (see
// events.ConsumerConfig.IdleRelease).
const idleRelease = 30 * time.Second

// openWorkers takes the data directory: it opens (and locks) the bbolt file.
// A second process on the same directory fails here within the store's
// lock timeout.
func openWorkers(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*workersRole, error) {
	db, err := store.Open(dbPath(cfg.DataDir), store.Options{})
	if err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	wx, err := wechatapi.New(wechatapi.Config{BaseURL: cfg.APIBase, AppID: cfg.AppID, AppSecret: cfg.AppSecret, Cache: db, Logger: log,
		Metrics: wechatapi.NewMetrics(reg)})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &workersRole{cfg: cfg, log: log, db: db, wx: wx, consumer: events.ConsumerConfig{IdleRelease: idleRelease}}, nil
}

// start runs the consumer and the pages' operations, mounts the admin
// API (the process with the workers role serves it: it owns the store) and
// registers the workers' metrics with reg.
func (w *workersRole) start(ctx context.Context, bus *events.Bus, mux *http.ServeMux, reg prometheus.Registerer) error {
	loc, err := w.cfg.Location()
	if err != nil {
		return err
	}
	// The console is made before the consumer starts and is told of every
	// committed scan.
	var console *admin.Console
	svc, err := workers.New(workers.Config{
		AppID: w.cfg.AppID, PublicURL: w.cfg.PublicURL, OAuthBase: w.cfg.OAuthBase, Scope: w.cfg.OAuthScope,
		DB: w.db, Bus: bus, WeChat: w.wx, Logger: w.log, Consumer: w.consumer, Metrics: workers.NewMetrics(reg),
		Location: loc, OnScans: func(ids ...string) { console.Notify(ids...) },
	})
	if err != nil {
		return err
	}
	acfg := admin.Config{
		Token: w.cfg.AdminToken, DB: w.db, Bus: bus, WeChat: w.wx, PublicURL: w.cfg.PublicURL, Logger: w.log,
		Durable: svc.Durable(), Location: loc,
	}
	console = admin.NewConsole(acfg)
	w.console = console
	reg.MustRegister(bus.StreamCollector(svc.Durable()))
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		console.Close()
		return err
	}
	w.svc = svc
	mux.Handle("/admin/", admin.New(acfg))
	mux.Handle(admin.ConsolePrefix, console)
	return nil
}

func (w *workersRole) ready() error {
	if w.svc == nil {
		return errors.New("workers not started")
	}
	return w.svc.Ready()
}

// closeStreams ends the console's live event streams, which
// http.Server.Shutdown would otherwise wait for.
func (w *workersRole) closeStreams() {
	if w.console != nil {
		w.console.Close()
	}
}

func (w *workersRole) stop() error {
	w.closeStreams()
	if w.svc != nil {
		w.svc.Stop()
	}
	return nil
}

func (w *workersRole) closeStore() error { return w.db.Close() }

// dataDirError words a failure to take the data directory for the operator:
// the one message for a directory held by another process, whichever of
// its locks (the bbolt file, the embedded NATS store) said so, and the one
// for a full disk.
func dataDirError(dir string, err error) error {
	switch {
	case errors.Is(err, store.ErrLocked), errors.Is(err, events.ErrStoreLocked):
		return fmt.Errorf("data directory %s (WXSCAN_DATA_DIR) is locked: another wxscan process is using it (%w)", dir, err)
	case errors.Is(err, store.ErrNoSpace):
		return fmt.Errorf("data directory %s (WXSCAN_DATA_DIR) is out of disk space: free some space and start again (%w)", dir, err)
	}
	return fmt.Errorf("open data directory %s: %w", dir, err)
}
