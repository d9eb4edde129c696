package cli_test

import (
	"testing"
	"time"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// TestServiceRegistersAfterItsDependencies: a service whose RabbitMQ does
// not answer exits naming it without ever appearing in the registry (it
// once registered, was offered to callers, and exited 0.1s later).
func TestServiceRegistersAfterItsDependencies(t *testing.T) {
	endpoint := etcdtest.StartEtcd(t)
	reg, err := rpc.NewEtcdRegistry([]string{endpoint}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	w, err := reg.Watch(registry.WatchService(rpc.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	e := newEnv(t)
	e["USERSVC_ETCD_ENDPOINTS"] = endpoint
	e["USERSVC_RABBITMQ_URL"] = "amqp://guest:guest@127.0.0.1:1/"
	e["USERSVC_PUBLIC_URL"] = "https://users.example.com"
	e["USERSVC_GRPC_ADDR"] = "127.0.0.1:0"
	e["USERSVC_OPS_ADDR"] = "127.0.0.1:0"
	expect(t, run(t, e, "", "service"), 1, "USERSVC_RABBITMQ_URL")

	// A node of our own marks the end: every event before it is the
	// service's.
	marker := &registry.Service{Name: rpc.ServiceName, Nodes: []*registry.Node{{Id: "marker", Address: "127.0.0.1:1"}}}
	if err := reg.Register(marker); err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(marker)
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Service.Nodes) == 1 && ev.Service.Nodes[0].Id == "marker" {
			return
		}
		t.Errorf("the failing service appeared in the registry: %s of %d node(s)", ev.Action, len(ev.Service.Nodes))
	}
}
