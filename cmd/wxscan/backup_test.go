package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.db")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	n, err := writeFileAtomic(path, false, write("first"))
	if err != nil || n != 5 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if _, err := writeFileAtomic(path, false, write("second")); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrite without replace: err=%v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("file=%q after a refused write", b)
	}
	boom := errors.New("cut short")
	if _, err := writeFileAtomic(path, true, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err=%v, want %v", err, boom)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("file=%q after a failed write", b)
	}
	if _, err := writeFileAtomic(path, true, write("second")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("file=%q after replace", b)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode=%v, want 0600", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("dir holds %d files, want 1 (temporary files left?)", len(entries))
	}
}
