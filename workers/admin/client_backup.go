package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Backup copies a consistent copy of the server's bbolt database (GET
// /admin/backup, application/octet-stream) to w and returns its size. An
// error after the first byte was written means w holds a partial copy that
// must not be used: the caller writes to a temporary file and renames it
// only on success.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/admin/backup", "", nil, "application/octet-stream")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin: backup cut short after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("admin: backup cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}
