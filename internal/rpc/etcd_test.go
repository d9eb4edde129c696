package rpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

func testService(meta string) *registry.Service {
	return &registry.Service{Name: "user.api", Version: "1", Nodes: []*registry.Node{
		{Id: "user.api-1", Address: "127.0.0.1:1001", Metadata: map[string]string{"v": meta}}}}
}

// TestEtcdRegistryRenewalAcrossAnOutage: a renewal while etcd is away
// fails (so the renewal loop can say so, and the stale registry knows),
// the lease runs out in etcd meanwhile, and the first renewal after etcd
// is back writes the registration anew, without waiting out a long
// reconnect backoff.
func TestEtcdRegistryRenewalAcrossAnOutage(t *testing.T) {
	endpoint := etcdtest.StartEtcd(t)
	direct := etcdRegistry(t, endpoint, 5*time.Second)
	proxy := testenv.NewProxy(t, endpoint)
	reg := etcdRegistry(t, proxy.Addr(), time.Second)
	svc := testService("a")
	if err := reg.Register(svc, registry.RegisterTTL(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(svc, registry.RegisterTTL(2*time.Second)); err != nil {
		t.Fatalf("renewal with etcd up: %v", err)
	}

	proxy.Down()
	if err := reg.Register(svc, registry.RegisterTTL(2*time.Second)); err == nil {
		t.Error("renewal with etcd away succeeded")
	}
	if err := reg.Ping(context.Background()); err == nil {
		t.Error("Ping with etcd away succeeded")
	}
	testenv.Eventually(t, 10*time.Second, "the lease to run out", func() bool {
		_, err := direct.GetService("user.api")
		return errors.Is(err, registry.ErrNotFound)
	})
	time.Sleep(8 * time.Second) // failed reconnects; gRPC's default backoff would now wait ~6s

	proxy.Up()
	back := time.Now()
	testenv.Eventually(t, 10*time.Second, "a renewal to succeed", func() bool {
		return reg.Register(svc, registry.RegisterTTL(2*time.Second)) == nil
	})
	t.Logf("registered again %v after etcd came back", time.Since(back).Round(10*time.Millisecond))
	svcs, err := direct.GetService("user.api")
	if err != nil || nodeCount(svcs) != 1 || svcs[0].Nodes[0].Address != "127.0.0.1:1001" {
		t.Fatalf("after the outage GetService = %v, %v; want the node again", svcs, err)
	}
	if err := reg.Ping(context.Background()); err != nil {
		t.Errorf("Ping after the outage: %v", err)
	}
}

// TestEtcdRegistryWatchAndChanges: a changed registration is written (not
// taken for a renewal), and a watcher sees the node created, updated and
// deleted, in that order, with the node each time.
func TestEtcdRegistryWatchAndChanges(t *testing.T) {
	reg := etcdRegistry(t, etcdtest.StartEtcd(t), 5*time.Second)
	w, err := reg.Watch(registry.WatchService("user.api"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := reg.Register(testService("a"), registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(testService("b"), registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	svcs, err := reg.GetService("user.api")
	if err != nil || nodeCount(svcs) != 1 || svcs[0].Nodes[0].Metadata["v"] != "b" {
		t.Fatalf("GetService after the change = %+v, %v; want the node with v=b", svcs, err)
	}
	if err := reg.Deregister(testService("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetService("user.api"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService after Deregister: %v, want not found", err)
	}
	for _, want := range []struct{ action, v string }{{"create", "a"}, {"update", "b"}, {"delete", "b"}} {
		r, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != want.action || r.Service.Name != "user.api" || len(r.Service.Nodes) != 1 || r.Service.Nodes[0].Metadata["v"] != want.v {
			t.Errorf("watch result %s %+v, want %s of the node with v=%s", r.Action, r.Service, want.action, want.v)
		}
	}
	all, err := reg.ListServices()
	if err != nil || len(all) != 0 {
		t.Errorf("ListServices after Deregister = %v, %v; want none", all, err)
	}
}

// TestStaleRegistryClosesTheEtcdClient: a role closes its registry when it
// stops; the StaleRegistry in front passes that on to the etcd client.
func TestStaleRegistryClosesTheEtcdClient(t *testing.T) {
	reg := NewStaleRegistry(etcdRegistry(t, etcdtest.StartEtcd(t), 5*time.Second), time.Second)
	if _, err := reg.ListServices(); err != nil {
		t.Fatalf("list before close: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := reg.ListServices(); err == nil {
		t.Fatal("list after close succeeded; the etcd client is still open")
	}
}
