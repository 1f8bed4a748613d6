package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// bindBackup is `wxscan backup FILE [--force]`: it writes a consistent copy
// of the running serve's database to FILE, whole or not at all (a
// temporary file beside it, synced, then renamed). An existing FILE is kept
// and the command fails, unless --force. FILE "-" writes to stdout.
func bindBackup(fset *flag.FlagSet) func(context.Context, *op, []string) error {
	force := fset.Bool("force", false, "backup: replace FILE if it exists")
	return func(ctx context.Context, o *op, args []string) error {
		if err := o.nargs(args, 1); err != nil {
			return err
		}
		path := args[0]
		if path == "-" {
			_, err := o.client.Backup(ctx, o.stdout)
			return err
		}
		if !*force {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists: choose another name or add --force to replace it", path)
			}
		}
		n, err := writeFileAtomic(path, *force, func(w io.Writer) error {
			_, err := o.client.Backup(ctx, w)
			return err
		})
		if err != nil {
			return err
		}
		return o.print(map[string]any{"file": path, "bytes": n}, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "wrote backup %s (%d bytes)\n", path, n)
			return err
		})
	}
}

// writeFileAtomic writes path (mode 0600) from what fill writes: into a
// temporary file in the same directory, synced, then moved to path. On any
// error the temporary file is removed and path is untouched. Without
// replace an existing path is an error (fs.ErrExist), checked atomically
// where the file system supports hard links.
func writeFileAtomic(path string, replace bool, fill func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countWriter{w: tmp}
	if err := fill(cw); err != nil {
		return cw.n, err
	}
	if err := tmp.Sync(); err != nil {
		return cw.n, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return cw.n, fmt.Errorf("write %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else if err = os.Link(tmp.Name(), path); err == nil || errors.Is(err, fs.ErrExist) {
		os.Remove(tmp.Name())
	} else if _, serr := os.Lstat(path); serr == nil {
		err = fs.ErrExist
	} else {
		err = os.Rename(tmp.Name(), path) // no hard links here
	}
	if errors.Is(err, fs.ErrExist) {
		return cw.n, fmt.Errorf("%s exists: choose another name or add --force to replace it", path)
	}
	if err != nil {
		return cw.n, fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable
		d.Close()
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
