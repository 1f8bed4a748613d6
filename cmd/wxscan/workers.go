package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
)

// workersRole is the workers side of a process: the store it owns, the
// consumers and the admin API.
type workersRole struct {
	cfg Config
	log *slog.Logger
	db  *store.DB
}

// openWorkers takes the data directory: it opens (and locks) the bbolt file.
func openWorkers(cfg Config, log *slog.Logger) (*workersRole, error) {
	db, err := store.Open(dbPath(cfg.DataDir), store.Options{})
	if err != nil {
		return nil, fmt.Errorf("data directory %s is locked or in use by another wxscan process: %w", cfg.DataDir, err)
	}
	return &workersRole{cfg: cfg, log: log, db: db}, nil
}

func (w *workersRole) start(ctx context.Context, bus *events.Bus, mux *http.ServeMux) error {
	return nil
}

func (w *workersRole) ready() error { return nil }

func (w *workersRole) stop() error { return nil }

func (w *workersRole) closeStore() error { return w.db.Close() }
