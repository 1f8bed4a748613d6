package admin

import (
	"net/http"
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
// A failure after the first byte cuts the answer short (the client sees
// fewer bytes than Content-Length) and is logged.
func (s *server) backup(w http.ResponseWriter, r *http.Request) error {
	name := "wxscan-" + s.cfg.Now().UTC().Format(BackupTimeFormat) + ".db"
	out := &backupAnswer{w: w, name: name}
	n, err := s.cfg.DB.Backup(out)
	if err != nil && !out.started {
		return err
	}
	if err != nil {
		s.cfg.Logger.Warn("admin backup cut short", "file", name, "written", n, "err", err)
		return nil
	}
	s.cfg.Logger.Info("admin backup", "file", name, "bytes", n)
	return nil
}

// backupAnswer sends the headers once the store announces the copy's size.
type backupAnswer struct {
	w       http.ResponseWriter
	name    string
	started bool
}

// SetSize implements store.SizeSetter.
func (a *backupAnswer) SetSize(n int64) {
	h := a.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+a.name+`"`)
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Cache-Control", "no-store")
	a.w.WriteHeader(http.StatusOK)
	a.started = true
}

func (a *backupAnswer) Write(p []byte) (int, error) { return a.w.Write(p) }
