package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
)

// Main is one wxscan process: it wires the configured roles together. An
// end-to-end test runs it with t.TempDir() and port 0.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string
	Stderr io.Writer

	natsSrv *events.Server
	bus     *events.Bus
	ln      net.Listener
	httpSrv *http.Server
	workers *workersRole
	// closers run in reverse order at Close.
	closers []func() error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Getenv: os.Getenv, Stderr: os.Stderr}
}

// ParseFlags reads `serve`'s flags and WXSCAN_* variables into m.Config
// and validates it.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("wxscan serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	post := m.Config.bind(fs, m.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range *post {
		if err := f(); err != nil {
			return err
		}
	}
	return m.Config.Validate()
}

// Run starts the configured roles and returns once the process is ready
// (HTTP answering, NATS up, consumers running). Call Close to stop.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	started := time.Now()
	cfg := m.Config
	if m.Logger == nil {
		m.Logger = newLogger(m.Stderr, cfg.LogLevel, cfg.LogFormat)
	}
	log := m.Logger
	if cfg.AppSecret != "" && !cfg.HasRole("workers") {
		// SPEC §2: a callback-only process holds no AppSecret, not even unused.
		log.Warn("WXSCAN_APPSECRET is set but this process has no workers role: ignored; remove it from this process's environment")
		cfg.AppSecret, m.Config.AppSecret = "", ""
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	// One registry per process for /metrics; each package registers its
	// own metrics on it.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The workers' store first: its file lock tells a second process on the
	// same data directory to go away before it touches NATS.
	if cfg.HasRole("workers") {
		w, err := openWorkers(cfg, log, reg)
		if err != nil {
			return err
		}
		m.workers = w
		m.closers = append(m.closers, w.closeStore)
	}
	opts := events.Options{URL: cfg.NATSURL, CredsFile: cfg.NATSCreds, AppID: cfg.AppID,
		Name: "wxscan " + fmt.Sprint(cfg.Roles), Replicas: cfg.StreamReplicas, Logger: log,
		DuplicateWindow: events.DuplicateWindowFor(cfg.MaxSkew), InboxPrefix: inboxPrefix(cfg)}
	if cfg.NATSURL == "" {
		token := cfg.NATSToken
		if token == "" {
			if token, err = events.LoadOrCreateToken(events.TokenFileOf(cfg.DataDir)); err != nil {
				return err
			}
		}
		srv, err := events.StartServer(events.ServerConfig{StoreDir: events.StoreDirOf(cfg.DataDir), Listen: cfg.NATSListen,
			Token: token, SyncInterval: cfg.NATSSyncInterval, SyncAlways: cfg.NATSSyncAlways})
		if errors.Is(err, events.ErrStoreLocked) {
			return dataDirError(cfg.DataDir, err)
		}
		if err != nil {
			return fmt.Errorf("embedded nats (WXSCAN_NATS_LISTEN %s): %w", cfg.NATSListen, err)
		}
		m.natsSrv = srv
		m.closers = append(m.closers, func() error { srv.Close(); return nil })
		opts.Server = srv
		sync := cfg.NATSSyncInterval.String()
		if cfg.NATSSyncAlways {
			sync = "always"
		}
		log.Info("embedded nats started", "listen", cfg.NATSListen, "store", events.StoreDirOf(cfg.DataDir), "sync", sync)
	}
	opts.Metrics = events.NewMetrics(reg)
	bus, err := events.Connect(ctx, opts)
	if err != nil {
		return err
	}
	m.bus = bus
	m.closers = append(m.closers, bus.Close)
	// A cluster that is still forming refuses a replicated stream ("no
	// suitable peers for placement") or does not answer yet (no quorum): try
	// again, 2 s per attempt, for up to 20 s.
	deadline := time.Now().Add(20 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := bus.EnsureStreams(actx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn("streams not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}

	mux := http.NewServeMux()
	health := callback.Health(m.ready)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	if cfg.HasRole("callback") {
		if cfg.AESKey != "" && !cfg.RequireEncryption {
			log.Warn("WXSCAN_AES_KEY is set but WXSCAN_REQUIRE_ENCRYPTION is not: plaintext POSTs are still accepted; set WXSCAN_REQUIRE_ENCRYPTION=true once the account is in safe mode")
		}
		h, err := callback.NewWeChatHandler(callback.Config{
			AppID:             cfg.AppID,
			Tokens:            []string{cfg.Token, cfg.TokenPrev},
			AESKeys:           []string{cfg.AESKey, cfg.AESKeyPrev},
			RequireEncryption: cfg.RequireEncryption,
			MaxSkew:           cfg.MaxSkew,
			Logger:            log,
			Metrics:           callback.NewMetrics(reg),
		}, bus)
		if err != nil {
			return err
		}
		mux.Handle(callback.CallbackPath, h)
		pages, err := callback.NewPages(callback.PagesConfig{PublicURL: cfg.PublicURL, Logger: log}, bus)
		if err != nil {
			return err
		}
		for _, p := range []string{callback.BindPath, callback.OAuthCallbackPath, callback.ScanPath, callback.ScansAPIPath, callback.ScanQtyAPIPath, callback.ScanUndoAPIPath, callback.JSSDKPath} {
			mux.Handle(p, pages)
		}
	}
	if m.workers != nil {
		if err := m.workers.start(ctx, bus, mux, reg); err != nil {
			return err
		}
		m.closers = append(m.closers, m.workers.stop)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	m.ln = ln
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if m.workers != nil {
		srv.RegisterOnShutdown(m.workers.closeStreams)
	}
	m.httpSrv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("wxscan ready", "addr", ln.Addr().String(), "roles", cfg.Roles, "data_dir", cfg.DataDir,
		"startup_ms", float64(time.Since(started).Microseconds())/1000)
	return nil
}

// ready is /readyz: NATS reachable, streams present, consumers running.
func (m *Main) ready(ctx context.Context) error {
	if m.bus == nil {
		return errors.New("not started")
	}
	if err := m.bus.Ready(ctx); err != nil {
		return err
	}
	if m.workers != nil {
		return m.workers.ready()
	}
	return nil
}

// HTTPAddr is the address HTTP listens on (useful with port 0).
func (m *Main) HTTPAddr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// NATSURL is the embedded server's client URL with its token in it
// (nats://TOKEN@127.0.0.1:4222), or "" when external or in-process only.
// It carries a secret: never log it.
func (m *Main) NATSURL() string {
	if m.natsSrv == nil || m.Config.NATSListen == "off" {
		return ""
	}
	return m.natsSrv.URL()
}

// inboxPrefix gives a single-role process reply subjects of its own, which
// the per-role NATS users of events/natsconf allow it (and only it) to read.
func inboxPrefix(cfg Config) string {
	switch {
	case len(cfg.Roles) != 1:
		return ""
	case cfg.HasRole("callback"):
		return "_INBOX_callback"
	case cfg.HasRole("workers"):
		return "_INBOX_workers"
	}
	return ""
}

// Close stops taking requests, finishes those in flight, stops the
// consumers, drains NATS, stops the embedded server and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
		m.httpSrv = nil
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	m.closers = nil
	return errors.Join(errs...)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// dbPath is the workers' bbolt file in a data dir.
func dbPath(dataDir string) string { return filepath.Join(dataDir, "wxscan.db") }
