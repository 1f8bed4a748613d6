// Package store keeps wxscan's durable state in one bbolt file: the staff
// directory, bindings, the short-lived OAuth and bind-session records, bind
// lockouts, the item master, stocktakes (scope and frozen book stock), scans
// with their running aggregates, processed event ids and cached WeChat tokens.
//
// It is the only package that imports bbolt. A *DB is safe for concurrent use
// by many goroutines; bbolt serialises writers, so one Update runs at a time
// while any number of Views read a consistent snapshot. Every write is
// committed with fsync (unless Options.NoSync) before the method returns.
//
// Times are stored and returned in UTC. A record with an expiry is valid while
// now is before its expiry.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors, wrapped by the methods that return them; test with errors.Is.
var (
	// ErrNotFound means the record does not exist (or, for OAuth codes, has expired).
	ErrNotFound = errors.New("not found")
	// ErrExpired means the record existed but its expiry has passed.
	ErrExpired = errors.New("expired")
	// ErrLocked means another process (or another open handle) holds the database file.
	ErrLocked = errors.New("locked")
	// ErrConflict means the request clashes with the current state, e.g. opening
	// a stocktake while another is open, or closing a closed one.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the arguments are invalid (empty key, bad state, ...).
	ErrInvalid = errors.New("invalid")
	// ErrNoSpace means a write failed because the data disk is full, a disk
	// quota is used up or the file reached the process's file size limit.
	// The failed transaction was rolled back: the file holds what was
	// committed before.
	ErrNoSpace = errors.New("no space left on the data disk")
)

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// FileName is the name of the database file inside wxscan's data directory.
const FileName = "wxscan.db"

// initialMmapSize is reserved address space, not disk: it lets read
// transactions run without blocking writers until the file outgrows it.
const initialMmapSize = 64 << 20

// Options configure Open.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process or handle; zero or negative means DefaultTimeout. Open never
	// waits longer.
	Timeout time.Duration
	// NoSync skips fsync on commit. For tests only: a crash may lose or
	// corrupt data.
	NoSync bool
}

// DB is wxscan's database. It is safe for concurrent use.
type DB struct {
	bolt *bbolt.DB
	path string
}

// Bucket names.
var (
	bucketMeta           = []byte("meta")
	bucketStaff          = []byte("staff")
	bucketBindings       = []byte("bindings")             // openid -> Binding
	bucketBindingsByEmp  = []byte("bindings_by_employee") // employee_no -> openid
	bucketOAuthStates    = []byte("oauth_states")         // schema 1-2 only: states are signed since 3
	bucketOAuthCodes     = []byte("oauth_codes")          // schema 1-2 only: replaced by oauth_used_codes
	bucketSessions       = []byte("bind_sessions")
	bucketBindAttempts   = []byte("bind_attempts")        // employee_no -> bind counter
	bucketOpenIDAttempts = []byte("bind_attempts_openid") // openid -> bind counter
	bucketUsedStates     = []byte("oauth_used_states")    // state -> OAuthUse
	bucketUsedCodes      = []byte("oauth_used_codes")     // code -> state it came back with
	bucketStocktakes     = []byte("stocktakes")
	bucketScans          = []byte("scans")        // stocktake id -> bucket of seq -> scan
	bucketScanCounts     = []byte("scan_counts")  // until version 3: stocktake id -> bucket of openid -> count
	bucketScanSeconds    = []byte("scan_seconds") // unix second -> count
	bucketLocations      = []byte("locations")
	bucketProcessed      = []byte("processed")    // event id -> unix nano
	bucketProcessedByAge = []byte("processed_at") // unix nano + event id -> nil
	// WeChat events processed since schema 5, keyed so that marks append:
	// the event's CreateTime (unix second) + event id -> unix nano processed.
	bucketProcessedEvents = []byte("processed_events")
	bucketTokens          = []byte("tokens")
	bucketOutbox          = []byte("outbox")          // event id -> reply not yet delivered
	bucketItems           = []byte("items")           // code -> sku, name, unit
	bucketItemsBySKU      = []byte("items_by_sku")    // sku 0 code -> name
	bucketOpenStocktakes  = []byte("open_stocktakes") // stocktake id -> nil
	bucketExpected        = []byte("expected")        // stocktake id -> bucket of location 0 sku -> qty
	bucketScanStats       = []byte("scan_stats")      // stocktake id -> bucket of running aggregates (stats.go)
	bucketScanIndex       = []byte("scan_index")      // openid 0 sequence -> stocktake id + seq
	bucketRecentScans     = []byte("recent_scans")    // openid -> refs of their latest scans (recent.go)

	keySchemaVersion = []byte("schema_version")
	keyOpenStocktake = []byte("open_stocktake") // until version 3: the one open stocktake
)

// migrations bring the schema from version i to i+1; the schema version is
// len(migrations). Append new steps, never edit or reorder old ones. Each
// step runs at most once per file, inside Open's single Update, and must
// tolerate partially present data (use CreateBucketIfNotExists).
var migrations = []func(*bbolt.Tx) error{
	// 1: the initial buckets.
	func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{
			bucketMeta, bucketStaff, bucketBindings, bucketBindingsByEmp,
			bucketOAuthStates, bucketOAuthCodes, bucketSessions, bucketBindAttempts,
			bucketStocktakes, bucketScans, bucketScanCounts, bucketScanSeconds,
			bucketLocations, bucketProcessed, bucketProcessedByAge, bucketTokens,
		} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 2: the reply outbox.
	func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketOutbox); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketOutbox, err)
		}
		return nil
	},
	// 3: signed OAuth states, remembered once used (with their code), and
	// bind counters per openid. The old state and code records are dropped:
	// an unsigned state is no longer accepted.
	func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketOAuthStates, bucketOAuthCodes} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return fmt.Errorf("delete bucket %s: %w", name, err)
			}
		}
		for _, name := range [][]byte{bucketUsedStates, bucketUsedCodes, bucketOpenIDAttempts} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 4: the item master, several open stocktakes with scope and book
	// stock, scans with sku, name, quantity and cancellation, and their
	// running aggregates and per-person index (rebuilt from the scans).
	func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketItems, bucketItemsBySKU, bucketOpenStocktakes, bucketExpected} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		for _, name := range [][]byte{bucketScanStats, bucketScanIndex} {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return fmt.Errorf("recreate bucket %s: %w", name, err)
				}
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if id := meta.Get(keyOpenStocktake); id != nil {
			if err := tx.Bucket(bucketOpenStocktakes).Put(bytes.Clone(id), nil); err != nil {
				return fmt.Errorf("move open stocktake: %w", err)
			}
			if err := meta.Delete(keyOpenStocktake); err != nil {
				return fmt.Errorf("move open stocktake: %w", err)
			}
		}
		if err := rebuildScanState(tx); err != nil {
			return fmt.Errorf("rebuild scan aggregates: %w", err)
		}
		if tx.Bucket(bucketScanCounts) != nil {
			if err := tx.DeleteBucket(bucketScanCounts); err != nil {
				return fmt.Errorf("drop bucket %s: %w", bucketScanCounts, err)
			}
		}
		return nil
	},
	// 5: processed WeChat events keyed by when they were created, so that
	// marking one appends instead of dirtying a page anywhere in a B+tree
	// of random ids. Marks made before stay in processed (still looked up)
	// until pruned.
	func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketProcessedEvents); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketProcessedEvents, err)
		}
		return nil
	},
	// 6: each person's latest scans by reference in one short value, ahead
	// of the scan index (see indexScan); the index keeps the older ones.
	func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRecentScans); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketRecentScans, err)
		}
		return nil
	},
}

// Open opens (creating if needed) the database file at path and its parent
// directory, and migrates its schema. If another process or handle holds the
// file, Open gives up after opts.Timeout with an error wrapping ErrLocked
// whose text says the database is locked by another process. If the disk is
// full, the error wraps ErrNoSpace; a new file is built under a temporary
// name and appears at path only once it is complete, so a full disk at the
// first start never leaves a half-written file behind.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("store: open: empty path: %w", ErrInvalid)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, noSpace(err))
	}
	bopts := &bbolt.Options{
		Timeout:         timeout,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		NoSync:          opts.NoSync,
		InitialMmapSize: initialMmapSize,
	}
	if err := create(path, bopts); err != nil {
		return nil, err
	}
	bdb, err := bbolt.Open(path, 0o600, bopts)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open: database %s is locked by another process (waited %s): %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, noSpace(err))
	}
	db := &DB{bolt: bdb, path: path}
	if err := db.migrate(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// create makes a new database file at path, initialised and migrated, if
// none exists. It writes a temporary file next to path and hard-links it into
// place, so path is either absent or complete: bbolt's own initialisation
// writes the first pages in place, and a short write there (a full disk)
// leaves a file that later fails to open or faults when read. If another
// process creates path first, create leaves that one alone.
func create(path string, bopts *bbolt.Options) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // it exists, or bbolt.Open reports why it cannot be read
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, noSpace(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", path, noSpace(err))
	}
	bdb, err := bbolt.Open(tmp, 0o600, bopts)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, noSpace(err))
	}
	err = (&DB{bolt: bdb, path: path}).migrate()
	if cerr := bdb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store: create %s: %w", path, noSpace(cerr))
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		// Another process won the race (EEXIST): open its file. Or the file
		// system has no hard links: let bbolt create path in place, as it
		// would without this step.
		return nil
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the new name durable; best effort
		_ = d.Close()
	}
	return nil
}

// noSpace wraps err with ErrNoSpace if it says the disk, the quota or the
// file size limit is exhausted. bbolt flattens some errors to text ("file
// resize error: truncate ...: file too large"), so the texts count too.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG} {
		if errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error()) {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return err
}

func (db *DB) migrate() error {
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		version, err := schemaVersion(meta)
		if err != nil {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program's %d: %w", version, len(migrations), ErrInvalid)
		}
		if version == len(migrations) {
			return nil
		}
		for i := version; i < len(migrations); i++ {
			if err := migrations[i](tx); err != nil {
				return fmt.Errorf("to version %d: %w", i+1, err)
			}
		}
		return meta.Put(keySchemaVersion, []byte(strconv.Itoa(len(migrations))))
	})
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.path, noSpace(err))
	}
	return nil
}

func schemaVersion(meta *bbolt.Bucket) (int, error) {
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("bad schema version %q: %w", v, err)
	}
	return n, nil
}

// SchemaVersion reports the schema version recorded in the file.
func (db *DB) SchemaVersion() (int, error) {
	var n int
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = schemaVersion(tx.Bucket(bucketMeta))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return n, nil
}

// Close releases the file and its lock. Calls after the first are no-ops.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// Check verifies the file's structure: every page reachable exactly once or
// free, no page both free and in use, keys in order. It reads the whole file
// while holding the writer's lock (bbolt's check is only safe against
// concurrent writers in a writable transaction), so it is for tests and
// maintenance, not for start-up or request paths. A nil error means the file
// is consistent.
func (db *DB) Check() error {
	var errs []error
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errCheckDone // roll back: Check writes nothing
	})
	if err != nil && !errors.Is(err, errCheckDone) {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("store: check %s: %w", db.path, errors.Join(errs...))
	}
	return nil
}

var errCheckDone = errors.New("check done")

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Tx is one bbolt transaction, valid only inside the function passed to
// Update or View. It is not safe for concurrent use, and values it returns
// stay valid after the transaction ends.
type Tx struct {
	tx *bbolt.Tx
}

// Update runs fn in one read-write transaction, committed (with fsync) if fn
// returns nil and rolled back otherwise; fn's error is returned unchanged.
// Writers are serialised, so batch many records (e.g. a fetched batch of
// events) into one Update: each commit costs an fsync. fn must not call
// other DB methods (that deadlocks or reads stale data); use tx's methods.
func (db *DB) Update(fn func(tx *Tx) error) error {
	var fnErr error
	err := db.bolt.Update(func(btx *bbolt.Tx) error {
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: commit: %w", noSpace(err))
	}
	return nil
}

// View runs fn in a read-only transaction that sees a consistent snapshot.
// Write methods called on its Tx fail. Keep it short: a long read
// transaction can delay a writer that needs to grow the file.
func (db *DB) View(fn func(tx *Tx) error) error {
	var fnErr error
	err := db.bolt.View(func(btx *bbolt.Tx) error {
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: view: %w", err)
	}
	return nil
}

// getJSON decodes the value at key into v and reports whether it existed.
func getJSON(b *bbolt.Bucket, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func u64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// expired reports whether a record with the given expiry is no longer valid at now.
func expired(expires, now time.Time) bool { return !now.Before(expires) }
