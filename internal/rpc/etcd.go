package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"go-micro.dev/v6/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// etcdPrefix is where registrations live: go-micro's layout
// (/micro/registry/<service>/<node id>, the service with that one node as
// JSON), so go-micro's own tools read what this registry writes.
const etcdPrefix = "/micro/registry/"

// etcdReconnect is how the client reconnects to an etcd that went away.
// gRPC's default backoff grows to 2 minutes, so after a one-minute outage
// the next attempt could come 40s after etcd was back, and registrations
// and lookups stayed failing that long. Attempts every 2s at most cost an
// etcd nothing.
var etcdReconnect = grpc.ConnectParams{
	Backoff: backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
}

// EtcdRegistry is the service registry on etcd. It is ours rather than
// go-micro's etcd plugin for two reasons found in an outage: the plugin
// cannot be given gRPC dial options, so it reconnects with gRPC's
// 2-minute backoff (etcdReconnect); and it renews a lease through a
// long-lived keep-alive stream whose failures no Register call sees, so a
// renewal loop could neither log nor report a failing registry. Here each
// Register with a TTL renews its lease with one request, and fails when
// etcd does; a lease that ran out meanwhile is granted and written anew.
type EtcdRegistry struct {
	client  *clientv3.Client
	timeout time.Duration
	opts    registry.Options

	mu    sync.Mutex
	nodes map[string]etcdNode // by key
}

// etcdNode is what a registration wrote: its value and its lease.
type etcdNode struct {
	value string
	lease clientv3.LeaseID
}

// NewEtcdRegistry returns a registry on the etcd cluster at endpoints
// (host:port). Every request is bounded by timeout. It does not dial:
// the first request does, so an unreachable etcd is an error there.
func NewEtcdRegistry(endpoints []string, timeout time.Duration) (*EtcdRegistry, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("rpc: etcd registry needs at least one endpoint")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    10 * time.Second, // a silently dropped connection is found, not waited on
		DialKeepAliveTimeout: timeout,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(etcdReconnect)},
		LogConfig:            etcdLogConfig(),
	})
	if err != nil {
		return nil, fmt.Errorf("rpc: etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return &EtcdRegistry{client: client, timeout: timeout, nodes: map[string]etcdNode{},
		opts: registry.Options{Addrs: endpoints, Timeout: timeout}}, nil
}

// Close ends the client's connections.
func (e *EtcdRegistry) Close() error { return e.client.Close() }

// Init applies options to what Options reports; the client is not
// reconnected.
func (e *EtcdRegistry) Init(opts ...registry.Option) error {
	for _, o := range opts {
		o(&e.opts)
	}
	return nil
}

// Options reports the endpoints and timeout.
func (e *EtcdRegistry) Options() registry.Options { return e.opts }

func (e *EtcdRegistry) String() string { return "etcd" }

// Ping asks etcd for one key with a linearizable read, which needs a
// quorum: what a registration needs too.
func (e *EtcdRegistry) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	_, err := e.client.Get(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err
}

// Register writes each of s's nodes under its own key, with a lease of the
// RegisterTTL option when it is set.
func (e *EtcdRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if len(s.Nodes) == 0 {
		return errors.New("rpc: register needs at least one node")
	}
	var o registry.RegisterOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, n := range s.Nodes {
		one := *s
		one.Nodes = []*registry.Node{n}
		b, err := json.Marshal(&one)
		if err != nil {
			return fmt.Errorf("rpc: encode %s: %w", s.Name, err)
		}
		if err := e.registerNode(etcdNodeKey(s.Name, n.Id), string(b), o.TTL); err != nil {
			return fmt.Errorf("rpc: register %s node %s: %w", s.Name, n.Id, err)
		}
	}
	return nil
}

// registerNode renews key's lease when it has one and its value is
// unchanged; otherwise (first registration, new value, lease run out) it
// writes the value with a fresh lease.
func (e *EtcdRegistry) registerNode(key, value string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	e.mu.Lock()
	prev, known := e.nodes[key]
	e.mu.Unlock()
	if known && prev.value == value && prev.lease != clientv3.NoLease && ttl > 0 {
		_, err := e.client.KeepAliveOnce(ctx, prev.lease)
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return err // renewed (nil), or etcd failed
		}
	}
	var put []clientv3.OpOption
	lease := clientv3.NoLease
	if ttl > 0 {
		g, err := e.client.Grant(ctx, int64(math.Ceil(ttl.Seconds())))
		if err != nil {
			return err
		}
		lease = g.ID
		put = append(put, clientv3.WithLease(lease))
	}
	if _, err := e.client.Put(ctx, key, value, put...); err != nil {
		return err
	}
	e.mu.Lock()
	e.nodes[key] = etcdNode{value: value, lease: lease}
	e.mu.Unlock()
	return nil
}

// Deregister deletes each of s's nodes and revokes its lease.
func (e *EtcdRegistry) Deregister(s *registry.Service, _ ...registry.DeregisterOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	for _, n := range s.Nodes {
		key := etcdNodeKey(s.Name, n.Id)
		e.mu.Lock()
		prev := e.nodes[key]
		delete(e.nodes, key)
		e.mu.Unlock()
		if _, err := e.client.Delete(ctx, key); err != nil {
			return fmt.Errorf("rpc: deregister %s node %s: %w", s.Name, n.Id, err)
		}
		if prev.lease != clientv3.NoLease {
			_, _ = e.client.Revoke(ctx, prev.lease) // the key is gone; the lease would expire anyway
		}
	}
	return nil
}

// GetService lists name's nodes, one Service per version;
// registry.ErrNotFound when it has none.
func (e *EtcdRegistry) GetService(name string, _ ...registry.GetOption) ([]*registry.Service, error) {
	svcs, err := e.list(etcdServiceKey(name) + "/")
	if err == nil && len(svcs) == 0 {
		err = registry.ErrNotFound
	}
	return svcs, err
}

// ListServices lists every registered service and version with its nodes.
func (e *EtcdRegistry) ListServices(...registry.ListOption) ([]*registry.Service, error) {
	return e.list(etcdPrefix)
}

// list reads the registrations under prefix, merged per service and
// version, sorted by name.
func (e *EtcdRegistry) list(prefix string) ([]*registry.Service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	rsp, err := e.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		return nil, err
	}
	byVersion := map[string]*registry.Service{}
	var out []*registry.Service
	for _, kv := range rsp.Kvs {
		s := decodeService(kv.Value)
		if s == nil {
			continue
		}
		if have, ok := byVersion[s.Name+"\x00"+s.Version]; ok {
			have.Nodes = append(have.Nodes, s.Nodes...)
			continue
		}
		byVersion[s.Name+"\x00"+s.Version] = s
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Watch follows the registrations of one service (WatchService) or of all.
func (e *EtcdRegistry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, opt := range opts {
		opt(&o)
	}
	prefix := etcdPrefix
	if o.Service != "" {
		prefix = etcdServiceKey(o.Service) + "/"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &etcdWatcher{ch: e.client.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithPrevKV()), stop: cancel}, nil
}

// etcdWatcher turns etcd's watch responses into registry results, one
// event at a time.
type etcdWatcher struct {
	ch      clientv3.WatchChan
	stop    context.CancelFunc
	pending []*registry.Result
}

// errWatchEnded is Next's error once the watch is stopped or cancelled.
var errWatchEnded = errors.New("rpc: registry watch ended")

// Next returns the next change; an error once the watch ends.
func (w *etcdWatcher) Next() (*registry.Result, error) {
	for len(w.pending) == 0 {
		rsp, ok := <-w.ch
		if !ok || rsp.Canceled {
			return nil, errWatchEnded
		}
		if err := rsp.Err(); err != nil {
			return nil, err
		}
		for _, ev := range rsp.Events {
			if r := watchResult(ev); r != nil {
				w.pending = append(w.pending, r)
			}
		}
	}
	r := w.pending[0]
	w.pending = w.pending[1:]
	return r, nil
}

// watchResult is ev as a registry result; nil for a value it cannot read.
func watchResult(ev *clientv3.Event) *registry.Result {
	switch {
	case ev.Type == clientv3.EventTypeDelete:
		if ev.PrevKv == nil { // compacted away: nothing to say which node left
			return nil
		}
		if s := decodeService(ev.PrevKv.Value); s != nil {
			return &registry.Result{Action: "delete", Service: s}
		}
	case ev.IsCreate():
		if s := decodeService(ev.Kv.Value); s != nil {
			return &registry.Result{Action: "create", Service: s}
		}
	default:
		if s := decodeService(ev.Kv.Value); s != nil {
			return &registry.Result{Action: "update", Service: s}
		}
	}
	return nil
}

// Stop ends the watch.
func (w *etcdWatcher) Stop() { w.stop() }

func decodeService(b []byte) *registry.Service {
	var s registry.Service
	if json.Unmarshal(b, &s) != nil || s.Name == "" {
		return nil
	}
	return &s
}

// etcdServiceKey and etcdNodeKey are go-micro's keys; a "/" in a name
// would split it, so it becomes "-".
func etcdServiceKey(name string) string {
	return path.Join(etcdPrefix, strings.ReplaceAll(name, "/", "-"))
}

func etcdNodeKey(name, id string) string {
	return path.Join(etcdServiceKey(name), strings.ReplaceAll(id, "/", "-"))
}
