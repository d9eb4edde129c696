package rpc_test

import (
	"errors"
	"testing"
	"time"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

// TestCallsSurviveRegistryOutage: while the caller cannot reach etcd, calls
// go on to the instance it last saw, promptly, and the registry says it is
// serving from its cache; once etcd answers again, that ends.
func TestCallsSurviveRegistryOutage(t *testing.T) {
	endpoint := etcdtest.StartEtcd(t)
	st := stack.New(t, stack.Options{})
	// The server reaches etcd through a proxy of its own, cut too: its
	// lease (2s) expires during the outage, and it must register again by
	// itself once etcd is back.
	srvEtcd := testenv.NewProxy(t, endpoint)
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0",
		Registry: rpc.TestEtcdRegistry(t, srvEtcd.Addr(), time.Second), TTL: 2 * time.Second,
		GracePeriod: time.Second}, rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	etcd := testenv.NewProxy(t, endpoint)
	reg := rpc.NewStaleRegistry(rpc.TestEtcdRegistry(t, etcd.Addr(), time.Second), 2*time.Second)
	users, _ := rpc.NewUserClient(rpc.ClientConfig{Registry: reg, Timeout: 5 * time.Second})
	ctx := testenv.Context(t)
	keys := func(phase string, n int) {
		t.Helper()
		for i := range n {
			start := time.Now()
			if _, err := users.Keys(ctx, &userv1.KeysRequest{}); err != nil {
				t.Fatalf("%s: call %d failed after %v: %v", phase, i, time.Since(start), err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s: call %d took %v", phase, i, d)
			}
		}
	}
	keys("before the outage", 5)
	if err := reg.Check(ctx); err != nil {
		t.Fatalf("Check with etcd up: %v", err)
	}

	etcd.Down()
	srvEtcd.Down()
	// go-micro's selector caches lookups for a minute, longer than this
	// test; a lookup as it makes one after that must be answered, from the
	// last list: at most the first one waits out the registry timeout.
	for i := range 5 {
		start := time.Now()
		svcs, err := reg.GetService(rpc.ServiceName)
		if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 || svcs[0].Nodes[0].Address != srv.Address() {
			t.Fatalf("lookup %d during the outage: %v, %v", i, svcs, err)
		}
		if d := time.Since(start); i > 0 && d > 100*time.Millisecond {
			t.Errorf("lookup %d during the outage took %v", i, d)
		}
	}
	keys("during the outage", 20)
	err = reg.Check(ctx)
	if err == nil || err.Error() != "registry unreachable, serving from cache" {
		t.Errorf("Check during the outage = %v, want the registry unreachable, serving from cache", err)
	}

	// Past the server's lease: etcd itself forgot the instance.
	fresh := rpc.TestEtcdRegistry(t, endpoint, time.Second)
	testenv.Eventually(t, 10*time.Second, "the lease to expire", func() bool {
		return errors.Is(rpc.HasInstances(fresh, rpc.ServiceName), rpc.ErrNoInstance)
	})
	keys("during the outage, lease expired", 5)

	etcd.Up()
	srvEtcd.Up()
	testenv.Eventually(t, 15*time.Second, "the server to register again", func() bool {
		return rpc.HasInstances(fresh, rpc.ServiceName) == nil
	})
	testenv.Eventually(t, 15*time.Second, "the registry to be read again", func() bool {
		keys("after the outage", 1)
		return reg.Check(ctx) == nil
	})
}
