package events

import (
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
	// Listen is host:port for client connections (loopback, no auth), or
	// "off" to accept in-process connections only. Port 0 picks a free port.
	Listen string
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
	lock *os.File
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
	return &Server{Server: ns}, nil
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
