package rpc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v6/codec/bytes"
	"go-micro.dev/v6/registry"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// registries are the two registries the project runs on; every behaviour
// test runs against both.
var registries = []struct {
	name string
	new  func(t *testing.T) Registry
}{
	{"memory", func(*testing.T) Registry { return NewMemoryRegistry() }},
	{"etcd", func(t *testing.T) Registry { return etcdRegistry(t, etcdtest.StartEtcd(t), 5*time.Second) }},
}

// recorder collects the lists a Watch reports and fails the test if
// update is ever called concurrently.
type recorder struct {
	t      *testing.T
	inside atomic.Bool
	mu     sync.Mutex
	lists  [][]string
	signal chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, signal: make(chan struct{}, 1)}
}

func (r *recorder) update(addrs []string) {
	if !r.inside.CompareAndSwap(false, true) {
		r.t.Error("update called concurrently")
	}
	defer r.inside.Store(false)
	r.mu.Lock()
	r.lists = append(r.lists, addrs)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *recorder) last() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lists) == 0 {
		return nil, false
	}
	return r.lists[len(r.lists)-1], true
}

// waitFor waits until the latest list is want.
func (r *recorder) waitFor(want []string, within time.Duration) {
	r.t.Helper()
	deadline := time.After(within)
	for {
		if got, ok := r.last(); ok && slices.Equal(got, want) {
			return
		}
		select {
		case <-r.signal:
		case <-deadline:
			got, _ := r.last()
			r.t.Fatalf("instances: want %v within %v, last update %v", want, within, got)
		}
	}
}

// watch runs d.Watch in the background and checks it returns once the test
// ends.
func watch(t *testing.T, d *Discovery, service string) *recorder {
	t.Helper()
	rec := newRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, service, rec.update) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after ctx ended, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after ctx ended")
		}
	})
	return rec
}

func TestDiscoveryFollowsRegistrations(t *testing.T) {
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			reg := r.new(t)
			rec := watch(t, NewDiscovery(reg), "user.api")
			rec.waitFor([]string{}, 5*time.Second) // reported right away, even when empty

			deregA, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1002", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			deregB, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// Another service's instances are not ours.
			deregOther, err := RegisterHTTP(reg, "other.api", "127.0.0.1:1003", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer deregOther()
			rec.waitFor([]string{"127.0.0.1:1001", "127.0.0.1:1002"}, 5*time.Second)

			deregA()
			rec.waitFor([]string{"127.0.0.1:1001"}, 5*time.Second)
			deregA() // idempotent
			deregB()
			rec.waitFor([]string{}, 5*time.Second)
		})
	}
}

// Two instances at one address (a restart that re-registered before the
// old key expired) are one address to the gateway.
func TestDiscoveryDeduplicates(t *testing.T) {
	reg := NewMemoryRegistry()
	rec := watch(t, NewDiscovery(reg), "user.api")
	for range 2 {
		dereg, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer dereg()
	}
	rec.waitFor([]string{"127.0.0.1:1001"}, 5*time.Second)
}

// A live instance stays registered past its TTL because RegisterHTTP
// renews it; one whose renewals stop (the process died) expires. The
// memory registry emits no event on expiry: the periodic re-read finds it.
func TestDiscoveryMemoryTTL(t *testing.T) {
	reg := NewMemoryRegistry()
	d := NewDiscovery(reg)
	d.resync = 200 * time.Millisecond
	rec := watch(t, d, "user.api")

	live, err := registerHTTP(reg, "user.api", "127.0.0.1:1001", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer live.deregister()
	dying, err := registerHTTP(reg, "user.api", "127.0.0.1:1002", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor([]string{"127.0.0.1:1001", "127.0.0.1:1002"}, 5*time.Second)

	dying.stopRenewing() // crash: no deregistration
	rec.waitFor([]string{"127.0.0.1:1001"}, 6*time.Second)

	time.Sleep(3 * time.Second) // > TTL: the renewed one is still there
	if got, _ := rec.last(); !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Fatalf("live instance expired: %v", got)
	}
}

// With etcd the lease is kept alive by the client's keep-alive stream, so
// "the process died" means its etcd connection is gone. The dying instance
// talks to etcd through a TCP relay the test cuts; its key must expire with
// the 2s lease while the other instance stays.
func TestDiscoveryEtcdLeaseExpiresWhenProcessDies(t *testing.T) {
	endpoint := etcdtest.StartEtcd(t)
	reg := etcdRegistry(t, endpoint, 5*time.Second)
	rec := watch(t, NewDiscovery(reg), "user.api")

	relay, cut := etcdtest.Relay(t, endpoint)
	dyingReg := etcdRegistry(t, relay, time.Second)

	deregLive, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer deregLive()
	deregDying, err := RegisterHTTP(dyingReg, "user.api", "127.0.0.1:1002", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor([]string{"127.0.0.1:1001", "127.0.0.1:1002"}, 5*time.Second)

	// Outlive the TTL first: keep-alives hold both leases.
	time.Sleep(3 * time.Second)
	if got, _ := rec.last(); len(got) != 2 {
		t.Fatalf("a live lease expired: %v", got)
	}

	cut()
	start := time.Now()
	rec.waitFor([]string{"127.0.0.1:1001"}, 10*time.Second)
	t.Logf("dead instance dropped %v after its connection was cut (TTL 2s)", time.Since(start).Round(100*time.Millisecond))
	deregDying() // fails to reach etcd, logs, returns
}

// flakyRegistry's watchers fail: #1 at once, #2 cannot be created, #3
// when breakCh closes; #4 is created only once gate opens (announcing it
// waits on waiting), so the test can change the registry while no watcher
// runs. Discovery must re-create them and re-read the list each time.
type flakyRegistry struct {
	Registry
	watches atomic.Int32
	breakCh chan struct{}
	waiting chan struct{}
	gate    chan struct{}
}

type flakyWatcher struct {
	registry.Watcher
	fail <-chan struct{}
}

func (f *flakyRegistry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	fail := make(chan struct{})
	switch f.watches.Add(1) {
	case 1:
		close(fail)
	case 2:
		return nil, errors.New("registry unreachable")
	case 3:
		fail = f.breakCh
	case 4:
		close(f.waiting)
		<-f.gate
	}
	w, err := f.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	return &flakyWatcher{Watcher: w, fail: fail}, nil
}

func (w *flakyWatcher) Next() (*registry.Result, error) {
	type result struct {
		r   *registry.Result
		err error
	}
	ch := make(chan result, 1)
	go func() { r, err := w.Watcher.Next(); ch <- result{r, err} }()
	select {
	case <-w.fail:
		w.Watcher.Stop()
		return nil, errors.New("watch stream broken")
	case res := <-ch:
		return res.r, res.err
	}
}

func TestDiscoveryRecoversFromWatcherFailures(t *testing.T) {
	reg := &flakyRegistry{Registry: NewMemoryRegistry(), breakCh: make(chan struct{}),
		waiting: make(chan struct{}), gate: make(chan struct{})}
	d := NewDiscovery(reg)
	d.minBackoff = 10 * time.Millisecond
	rec := watch(t, d, "user.api")
	rec.waitFor([]string{}, 5*time.Second)

	// Watch #1 failed at once, #2 could not be created; #3 works.
	deadline := time.Now().Add(5 * time.Second)
	for reg.watches.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	dereg, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dereg()
	rec.waitFor([]string{"127.0.0.1:1001"}, 5*time.Second)

	// Break watcher #3, and register while #4 is not there yet: the memory
	// registry has nobody to send the event to, so only the re-read after
	// reconnecting can find the new instance.
	close(reg.breakCh)
	<-reg.waiting
	dereg2, err := RegisterHTTP(reg.Registry, "user.api", "127.0.0.1:1002", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dereg2()
	close(reg.gate)
	rec.waitFor([]string{"127.0.0.1:1001", "127.0.0.1:1002"}, 5*time.Second)
}

// A failing read keeps the last list instead of reporting no instances.
type failingGets struct {
	Registry
	fail atomic.Bool
}

func (f *failingGets) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if f.fail.Load() {
		return nil, errors.New("etcd unreachable")
	}
	return f.Registry.GetService(name, opts...)
}

func TestDiscoveryKeepsListWhenRegistryFails(t *testing.T) {
	reg := &failingGets{Registry: NewMemoryRegistry()}
	d := NewDiscovery(reg)
	d.resync = 50 * time.Millisecond
	d.minBackoff = 10 * time.Millisecond
	rec := watch(t, d, "user.api")
	dereg, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor([]string{"127.0.0.1:1001"}, 5*time.Second)

	reg.fail.Store(true)
	time.Sleep(300 * time.Millisecond) // several failed re-reads
	if got, _ := rec.last(); !slices.Equal(got, []string{"127.0.0.1:1001"}) {
		t.Fatalf("list changed while the registry failed: %v", got)
	}
	dereg()
	reg.fail.Store(false)
	rec.waitFor([]string{}, 5*time.Second)
}

func TestRegisterHTTPNode(t *testing.T) {
	reg := NewMemoryRegistry()
	if _, err := RegisterHTTP(reg, "", "127.0.0.1:1", time.Second); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := RegisterHTTP(reg, "user.api", "", time.Second); err == nil {
		t.Error("empty address accepted")
	}
	dereg, err := RegisterHTTP(reg, "user.api", "10.0.0.7:8081", 0)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := reg.GetService("user.api")
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("GetService = %v, %v", svcs, err)
	}
	n := svcs[0].Nodes[0]
	if n.Address != "10.0.0.7:8081" || n.Metadata["protocol"] != "http" || len(n.Id) <= len("user.api-") {
		t.Errorf("node = %+v", n)
	}
	dereg()
	if _, err := reg.GetService("user.api"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("after deregister: %v", err)
	}
}

// The codec init installs must serve go-micro (raw frames, APIv2
// messages) and etcd (gogo messages) alike; etcd's would fail with go-micro's
// server codec in place.
func TestProtoCodec(t *testing.T) {
	c := encoding.GetCodec("proto")
	if _, ok := c.(protoCodec); !ok {
		t.Fatalf(`gRPC's "proto" codec is %T, want rpc.protoCodec`, c)
	}
	put := &etcdserverpb.PutRequest{Key: []byte("/k"), Value: []byte("v"), Lease: 7}
	b, err := c.Marshal(put)
	if err != nil {
		t.Fatalf("marshal etcd message: %v", err)
	}
	var got etcdserverpb.PutRequest
	if err := c.Unmarshal(b, &got); err != nil || string(got.Key) != "/k" || got.Lease != 7 {
		t.Fatalf("etcd round trip: %v %+v", err, &got)
	}
	s := wrapperspb.String("hello")
	if b, err = c.Marshal(s); err != nil {
		t.Fatal(err)
	}
	var s2 wrapperspb.StringValue
	if err := c.Unmarshal(b, &s2); err != nil || s2.Value != "hello" {
		t.Fatalf("protobuf round trip: %v %v", err, s2.Value)
	}
	var f bytes.Frame
	if err := c.Unmarshal([]byte{1, 2}, &f); err != nil || len(f.Data) != 2 {
		t.Fatalf("frame: %v %v", err, f.Data)
	}
	if b, err := c.Marshal(&bytes.Frame{Data: []byte{3}}); err != nil || len(b) != 1 {
		t.Fatalf("frame marshal: %v %v", err, b)
	}
	if _, err := c.Marshal(42); err == nil {
		t.Error("marshalled an int")
	}
}

// staleAfterEvent answers reads with the list from before arm for a
// moment after it, as etcd can when the reads a watch event triggers race
// the write that caused it (its watchable store notifies watchers before
// the write is visible to new reads).
type staleAfterEvent struct {
	Registry
	mu      sync.Mutex
	staleTo time.Time
	prev    []*registry.Service
	prevErr error
	served  int // stale answers given
}

func (f *staleAfterEvent) arm(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.staleTo = time.Now().Add(d)
}

func (f *staleAfterEvent) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Now().Before(f.staleTo) {
		f.served++
		return f.prev, f.prevErr
	}
	f.prev, f.prevErr = f.Registry.GetService(name, opts...)
	return f.prev, f.prevErr
}

// Reads that an event triggered and that still saw the old list are
// corrected by the settle read, long before the resync.
func TestDiscoverySettlesAfterAStaleRead(t *testing.T) {
	reg := &staleAfterEvent{Registry: NewMemoryRegistry()}
	d := NewDiscovery(reg)
	d.resync = time.Hour
	rec := watch(t, d, "user.api")
	dereg, err := RegisterHTTP(reg, "user.api", "127.0.0.1:1001", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor([]string{"127.0.0.1:1001"}, 5*time.Second)
	reg.arm(d.settle / 2)
	dereg()
	rec.waitFor([]string{}, 5*time.Second)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.served == 0 {
		t.Fatal("no read during the stale moment: the test did not exercise a stale read")
	}
}
