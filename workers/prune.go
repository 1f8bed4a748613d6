package workers

import (
	"sync"
	"time"
)

// Defaults of Config.ProcessedRetention and Config.PruneInterval.
const (
	DefaultProcessedRetention = 7 * 24 * time.Hour
	DefaultPruneInterval      = time.Hour
)

// Prune removes, at the service's now, the records that no longer count:
// expired OAuth uses, bind sessions and bind counters (store.PruneExpired)
// and processed event ids older than ProcessedRetention
// (store.PruneProcessed). It logs what it removed and any failure (a
// failure is retried at the next run) and writes nothing when nothing is
// stale. Safe to call at any time, concurrently with everything else.
func (s *Service) Prune() {
	now := s.now()
	expired, err := s.db.PruneExpired(now)
	if err != nil {
		s.log.Warn("prune expired records", "err", err)
	}
	processed, err := s.db.PruneProcessed(now.Add(-s.cfg.ProcessedRetention))
	if err != nil {
		s.log.Warn("prune processed event ids", "err", err)
	}
	if expired > 0 || processed > 0 {
		s.log.Info("pruned", "expired_records", expired, "processed_ids", processed)
	}
}

// startPruning runs Prune every PruneInterval until Stop.
func (s *Service) startPruning() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.cfg.PruneInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.Prune()
			}
		}
	})
	s.mu.Lock()
	prev := s.stopPrune
	s.stopPrune = func() { close(done); wg.Wait() }
	s.mu.Unlock()
	if prev != nil { // Start called twice: keep one pruner
		prev()
	}
}
