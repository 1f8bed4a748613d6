package events

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// StoreDir holds JetStream's file storage.
	StoreDir string
	// Listen is host:port for client connections (loopback), or "off" to
	// accept in-process connections only. Port 0 picks a free port.
	Listen string
	// Token, when set, is required of every client, on the listener and in
	// process (NATS token authentication: nats://TOKEN@host:port). Empty
	// accepts clients without credentials (tests, cluster nodes of a test).
	Token string
	// SyncInterval is how often JetStream fsyncs its files (0: nats-server's
	// default, 2 minutes); SyncAlways fsyncs before every acknowledgement.
	SyncInterval time.Duration
	SyncAlways   bool
	// Name is the server name; default "wxscan".
	Name string
	// Cluster, when set, makes the server one node of a JetStream cluster:
	// ClusterListen is its route listen address and Routes the other nodes.
	ClusterName   string
	ClusterListen string
	Routes        []string
}

// Server is an embedded nats-server with JetStream enabled.
type Server struct {
	*server.Server
	lock  *os.File
	token string
}

// storeLockWait is how long StartServer waits for another process to let
// go of the store directory, as the store waits for its file lock.
const storeLockWait = 2 * time.Second

// maxStore is the JetStream storage limit the embedded server declares. The
// streams' own limits (age, MaxBytes) bound what is stored; this only keeps
// nats-server from refusing the WECHAT stream's 4 GiB reservation on a disk
// with less than about 5.4 GiB free (its default limit is 75% of the free
// space at start). A disk that really fills is a publish error: a 503.
const maxStore = 1 << 40

// StartServer starts an embedded NATS server with JetStream on file storage
// under cfg.StoreDir and waits until it accepts connections (or fails after
// 10 s).
func StartServer(cfg ServerConfig) (*Server, error) {
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("events: nats store dir: %w", err)
	}
	lock, err := lockStoreDir(cfg.StoreDir, storeLockWait)
	if err != nil {
		return nil, err
	}
	srv, err := startServer(cfg)
	if err != nil {
		lock.Close()
		return nil, err
	}
	srv.lock = lock
	return srv, nil
}

func startServer(cfg ServerConfig) (*Server, error) {
	opts := &server.Options{
		ServerName:             cfg.Name,
		JetStream:              true,
		JetStreamMaxStore:      maxStore,
		StoreDir:               cfg.StoreDir,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
		MaxPayload:             1 << 20,
		Authorization:          cfg.Token,
		SyncInterval:           cfg.SyncInterval,
		SyncAlways:             cfg.SyncAlways,
	}
	if opts.ServerName == "" {
		opts.ServerName = "wxscan"
	}
	if cfg.Listen == "off" {
		opts.DontListen = true
	} else {
		listen := cfg.Listen
		if listen == "" {
			listen = "127.0.0.1:4222"
		}
		host, port, err := splitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("events: nats listen %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.ClusterListen != "" {
		host, port, err := splitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("events: nats cluster listen %q: %w", cfg.ClusterListen, err)
		}
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.Host, opts.Cluster.Port = host, port
		opts.Routes = server.RoutesFromStr(strings.Join(cfg.Routes, ","))
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: new nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("events: embedded nats server not ready after 10s (is the port in use?)")
	}
	return &Server{Server: ns, token: cfg.Token}, nil
}

// URL is the client URL with the token in it (nats://TOKEN@host:port), or
// ClientURL when the server needs none. It carries a secret: never log it.
func (s *Server) URL() string {
	u := s.ClientURL()
	if s.token == "" {
		return u
	}
	return strings.Replace(u, "://", "://"+s.token+"@", 1)
}

// StoreDirOf is where the embedded server keeps JetStream under a data dir.
func StoreDirOf(dataDir string) string { return filepath.Join(dataDir, "nats") }

// Close shuts the server down and waits for it to finish.
func (s *Server) Close() {
	s.Shutdown()
	s.WaitForShutdown()
	if s.lock != nil {
		s.lock.Close()
	}
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// TokenFileOf is where the embedded server's generated client token is kept
// under a data dir.
func TokenFileOf(dataDir string) string { return filepath.Join(dataDir, "nats.token") }

// LoadOrCreateToken returns the token kept in path, or, when there is none
// yet, generates one (32 random bytes, hex) and writes it there with mode
// 0600, atomically (a temporary file renamed into place), so that a crash
// never leaves a half-written token. Safe to call at every start; it is not
// safe against two processes creating the same file at once (the data
// directory's lock prevents that).
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("events: nats token file %s is empty: remove it to generate a new token", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("events: read nats token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("events: generate nats token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("events: write nats token: %w", err)
	}
	return tok, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, then syncs the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
