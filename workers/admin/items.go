package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wxscan/wxscan/store"
)

// importItems is POST /admin/items/import: the body is an item master, CSV
// or XLSX with the columns of ItemColumns (ParseItems), imported all or
// nothing. It answers ImportResult (codes new and codes replaced); a bad
// row is 400 naming its line.
func (s *server) importItems(w http.ResponseWriter, r *http.Request) error {
	rows, err := ParseItems(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		return err
	}
	added, updated, err := s.cfg.DB.ImportItems(rows)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "store: "))
		}
		return err
	}
	s.cfg.Logger.Info("admin imported items", "added", added, "updated", updated)
	writeJSON(w, http.StatusOK, ImportResult{Added: added, Updated: updated})
	return nil
}
