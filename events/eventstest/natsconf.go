package eventstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MustConfigServer starts a nats-server from the configuration file conf
// (e.g. events/natsconf/nats.conf, with its environment variables set by the
// caller) as a single node: its users, permissions and JetStream settings
// stand, but it listens on a random loopback port, keeps JetStream under
// tb's temp dir and has no cluster or routes. It returns the client URL
// without credentials and stops the server at cleanup.
func MustConfigServer(tb testing.TB, conf string) string {
	tb.Helper()
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		tb.Fatalf("nats config %s: %v", conf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.StoreDir = tb.TempDir()
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("nats server from %s: %v", conf, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		tb.Fatalf("nats server from %s not ready", conf)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}
