// Package etcdtest starts a real etcd server embedded in a test process. It is
// apart from testenv so only the tests that need etcd link its server.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"go.etcd.io/etcd/server/v3/embed"
)

// StartEtcd starts a single-member etcd server embedded in the test process,
// with its data in t.TempDir(), and stops it when the test ends. It returns
// the client endpoint as host:port, the form rpc.NewEtcdRegistry takes.
//
// Unlike the other servers here it needs no setting and never skips: etcd
// is a Go library, so registry tests always run against the real thing
// (leases, watches, keep-alives) rather than a fake.
//
// The endpoint is a Relay in front of etcd, cut before etcd stops: etcd's
// Close waits its whole request timeout (7s) for client connections to end,
// and some clients never close (go-micro's etcd registry has no Close).
func StartEtcd(t testing.TB) (endpoint string) {
	t.Helper()
	// embed needs concrete ports (the peer URL must match the initial
	// cluster), so pick free ones; another process may grab one between
	// the probe and etcd's listen, hence the retries.
	stop, client, err := Start(t.TempDir, "error")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(stop) // runs after the relay's cleanup (LIFO)
	endpoint, _ = Relay(t, client)
	return endpoint
}

// Start runs a single-member etcd in this process with its data in a
// directory from tempDir (a fresh one per attempt), and returns a stop
// function and the client endpoint (host:port). A probed free port can be
// taken before etcd binds it, so it retries on "address already in use".
// Programs that are not tests (the load generator) use it directly.
func Start(tempDir func() string, logLevel string) (stop func(), endpoint string, err error) {
	for range 5 {
		var e *embed.Etcd
		e, endpoint, err = startEtcd(tempDir(), logLevel)
		if err == nil {
			return e.Close, endpoint, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, "", fmt.Errorf("start embedded etcd: %w", err)
}

func startEtcd(dir, logLevel string) (*embed.Etcd, string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, "", err
	}
	client := url.URL{Scheme: "http", Host: ports[0]}
	peer := url.URL{Scheme: "http", Host: ports[1]}
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = dir
	cfg.LogLevel = logLevel
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Test data is thrown away; fsync only slows the tests down.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, client.Host, nil
	case err := <-e.Err():
		e.Close()
		return nil, "", err
	case <-time.After(30 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, "", errors.New("embedded etcd not ready after 30s")
	}
}

// freePorts returns n distinct 127.0.0.1:port addresses that were free a
// moment ago.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// Relay puts a testenv.Proxy in front of target; cut closes it for good:
// to the clients behind it, target is gone — a crash or a network
// partition, as the client sees it. cut is idempotent.
func Relay(t testing.TB, target string) (addr string, cut func()) {
	t.Helper()
	p := testenv.NewProxy(t, target)
	return p.Addr(), p.Close
}
