package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrStoreLocked means another process runs an embedded server on the same
// JetStream store directory.
var ErrStoreLocked = errors.New("store directory is in use by another process")

// lockStoreDir takes an exclusive lock on dir/LOCK, waiting up to wait for
// another process to let go of it. nats-server does not lock its store
// directory itself, and two servers on one directory would corrupt it.
// The lock ends with the returned file's Close, or with the process.
func lockStoreDir(dir string, wait time.Duration) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("events: JetStream store %s is locked by another process (waited %s): %w", dir, wait, ErrStoreLocked)
			}
			return nil, fmt.Errorf("events: lock %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
