package admin

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

// BackupTimeFormat is the UTC timestamp in a backup's file name,
// wxscan-<timestamp>.db.
const BackupTimeFormat = "20060102T150405Z"

// backup is GET /admin/backup: a consistent copy of the database, as it
// stands when the request is served, streamed as application/octet-stream
// with its Content-Length and a file name wxscan-<UTC timestamp>.db.
// Scans recorded meanwhile go on and are not in the copy. Placed as
// wxscan.db in an empty data directory, the file restores the database.
//
// The copy is first written to a temporary file beside the database (one
// short read transaction at disk speed), then sent: a slow client never
// holds a read transaction open, which would make a writer that has to
// grow the file's memory map wait for the download. The temporary file is
// removed when the answer ends. A failure after the first byte cuts the
// answer short (the client sees fewer bytes than Content-Length) and is
// logged.
func (s *server) backup(w http.ResponseWriter, r *http.Request) error {
	name := "wxscan-" + s.cfg.Now().UTC().Format(BackupTimeFormat) + ".db"
	f, err := os.CreateTemp(filepath.Dir(s.cfg.DB.Path()), ".backup-*.db")
	if err != nil {
		return fmt.Errorf("admin: backup: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := s.cfg.DB.Backup(f)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("admin: backup: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if sent, err := io.Copy(w, f); err != nil {
		s.cfg.Logger.Warn("admin backup cut short", "file", name, "written", sent, "err", err)
		return nil
	}
	s.cfg.Logger.Info("admin backup", "file", name, "bytes", n)
	return nil
}
