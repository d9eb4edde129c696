package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go-micro.dev/v6/codec/bytes"
	"go-micro.dev/v6/registry"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// init gives gRPC back a "proto" codec that etcd's client can use.
//
// gRPC keeps one process-wide codec per name. go-micro's gRPC client and
// server packages both replace "proto" in their init; the server's, which
// runs last (packages initialise in import-path order), accepts only
// google.golang.org/protobuf messages and answers "invalid message" for
// etcd's gogo-generated ones. Any binary linking go-micro's gRPC server
// therefore cannot talk to etcd: every registration, lookup and watch of
// the etcd registry fails with "grpc: error while marshaling: invalid
// message" (go-micro fixed only the client codec, micro/go-micro#2333).
// This package imports both, so its init runs after theirs and wins.
func init() { encoding.RegisterCodec(protoCodec{}) }

// protoCodec is the union of what go-micro's two codecs accept — raw
// go-micro frames and protobuf messages — plus legacy (gogo, APIv1)
// messages, which it adapts the way gRPC's own default codec does. The
// user server forces it as its codec too, for the rawMessage it decodes
// itself (decodeErrors).
type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *bytes.Frame:
		return m.Data, nil
	case proto.Message:
		return proto.Marshal(m)
	case protoadapt.MessageV1:
		return proto.Marshal(protoadapt.MessageV2Of(m))
	}
	return nil, fmt.Errorf("rpc: proto codec cannot marshal %T", v)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *bytes.Frame:
		m.Data = data // gRPC hands codecs a private copy
		return nil
	case *rawMessage: // the server's request bytes, for decodeErrors
		*m = append((*m)[:0], data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	case protoadapt.MessageV1:
		return proto.Unmarshal(data, protoadapt.MessageV2Of(m))
	}
	return fmt.Errorf("rpc: proto codec cannot unmarshal into %T", v)
}

// defaultHTTPTTL is RegisterHTTP's lease when the caller passes none; it
// matches ServerConfig's default so HTTP and gRPC instances age out alike.
const defaultHTTPTTL = 15 * time.Second

// RegisterHTTP registers one HTTP instance of service name at addr (a
// host:port others can dial) and keeps it registered until deregister is
// called.
//
// The registration carries a lease of ttl: with etcd, go-micro keeps the
// lease alive over the client's keep-alive stream, so when the process dies
// (or is cut off from etcd) the key expires after ttl and the gateway drops
// the instance without anyone deregistering it. RegisterHTTP also
// re-registers every ttl/3: that refreshes the memory registry's TTL, and
// with etcd it re-creates the key if the lease was lost during a partition
// (go-micro's "unchanged" check makes it a no-op otherwise).
//
// ttl <= 0 means 15s. etcd leases are whole seconds and go-micro writes a key
// with no lease at all for a TTL under one second — one that would never
// expire — so shorter values are raised to one second.
//
// deregister stops the renewal and removes the instance; it is idempotent
// and safe to call from several goroutines. Call it before draining the
// HTTP server, so that no new requests are routed to an instance that is
// going away.
func RegisterHTTP(reg Registry, name, addr string, ttl time.Duration) (deregister func(), err error) {
	r, err := registerHTTP(reg, name, addr, ttl)
	if err != nil {
		return nil, err
	}
	return r.deregister, nil
}

// httpRegistration is one RegisterHTTP instance: the registered node and
// the goroutine that renews it.
type httpRegistration struct {
	reg  Registry
	svc  *registry.Service
	ttl  time.Duration
	log  *slog.Logger
	stop chan struct{} // closed to end renew
	done chan struct{} // closed when renew has returned

	stopOnce  sync.Once
	deregOnce sync.Once
}

func registerHTTP(reg Registry, name, addr string, ttl time.Duration) (*httpRegistration, error) {
	switch {
	case reg == nil:
		return nil, errors.New("rpc: RegisterHTTP needs a registry")
	case name == "":
		return nil, errors.New("rpc: RegisterHTTP needs a service name")
	case addr == "":
		return nil, errors.New("rpc: RegisterHTTP needs an address")
	}
	if ttl <= 0 {
		ttl = defaultHTTPTTL
	}
	ttl = max(ttl, time.Second)
	r := &httpRegistration{
		reg: reg,
		svc: &registry.Service{Name: name, Nodes: []*registry.Node{{
			Id:       name + "-" + uuid.NewString(),
			Address:  addr,
			Metadata: map[string]string{"protocol": "http"},
		}}},
		ttl:  ttl,
		log:  slog.Default(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := reg.Register(r.svc, registry.RegisterTTL(ttl)); err != nil {
		return nil, fmt.Errorf("rpc: register %s at %s: %w", name, addr, err)
	}
	go r.renew()
	return r, nil
}

// renew re-registers every ttl/3, so one or two failed renewals in a row
// (a registry hiccup) do not let a healthy instance expire.
func (r *httpRegistration) renew() {
	defer close(r.done)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		err := r.reg.Register(r.svc, registry.RegisterTTL(r.ttl))
		switch {
		case err != nil:
			// Every failure is logged: an instance that cannot renew will
			// vanish from the gateway after ttl, and the log should say why.
			r.log.Warn("registry: renewing registration failed", "service", r.svc.Name,
				"node", r.svc.Nodes[0].Id, "error", err)
			failing = true
		case failing:
			r.log.Info("registry: registration renewed again", "service", r.svc.Name, "node", r.svc.Nodes[0].Id)
			failing = false
		}
	}
}

// stopRenewing ends the renewal loop without deregistering: the node then
// lives on in the registry only until its TTL runs out, as if the process
// had died. deregister uses it; tests use it to simulate a crash.
func (r *httpRegistration) stopRenewing() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
}

func (r *httpRegistration) deregister() {
	r.deregOnce.Do(func() {
		// Stop renewing first, or a renewal racing the Deregister could
		// put the node right back.
		r.stopRenewing()
		if err := r.reg.Deregister(r.svc); err != nil {
			// The lease still expires it after ttl; nothing more to do.
			r.log.Warn("registry: deregistering failed; the registration expires on its own",
				"service", r.svc.Name, "node", r.svc.Nodes[0].Id, "ttl", r.ttl, "error", err)
		}
	})
}

// Discovery follows the instances of services in a registry, for clients
// (the gateway) that keep their own instance list instead of asking the
// registry on every request.
type Discovery struct {
	reg Registry
	log *slog.Logger
	// resync is how often the list is re-read even without events. Events
	// can be lost: go-micro's memory registry drops one when the watcher
	// is not reading within 10ms and emits none when a TTL expires, and
	// its etcd watcher returns only the first event of a batch.
	resync time.Duration
	// settle is how long after an event the list is read once more. etcd
	// tells watchers of a write a moment before new reads can see it (its
	// watchable store notifies, then ends the write transaction), so under
	// load the read an event triggers can return the list from before the
	// change; with no later event, only the resync would correct it.
	settle time.Duration
	// minBackoff and maxBackoff bound the wait between attempts to
	// re-create a failed watcher or re-read a failed listing.
	minBackoff, maxBackoff time.Duration
}

// NewDiscovery returns a Discovery over reg. It logs to slog.Default().
func NewDiscovery(reg Registry) *Discovery {
	return &Discovery{reg: reg, log: slog.Default(), resync: 30 * time.Second, settle: 250 * time.Millisecond,
		minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
}

// Watch calls update with the sorted, de-duplicated addresses of service's
// nodes (all versions; possibly none) as soon as it has read them, then
// again whenever they change, until ctx ends; it then returns nil. update
// is never called concurrently, and never twice in a row with the same
// list. It receives a fresh slice each time, which it may keep.
//
// Every registry event triggers a fresh GetService rather than applying
// the event itself: events can be partial, coalesced or lost, and a
// re-read is right once the change is visible, which on etcd can be a
// moment after the event: the list is read again 250ms after the last
// event (see Discovery.settle). The watcher is created before the first read,
// so a change between the two is not missed. A failed watcher is logged
// and re-created with backoff (100ms doubling to 5s), and the list is
// re-read once it is back; the list is also re-read every 30s as a safety
// net for lost events.
//
// When a read fails (etcd unreachable), the last list stands — dropping
// every instance because the registry blinked would take the gateway down
// with it — and the read is retried with backoff. In particular, update is
// first called once a read succeeds, not with a guess.
func (d *Discovery) Watch(ctx context.Context, service string, update func(addrs []string)) error {
	if d == nil || d.reg == nil {
		return errors.New("rpc: discovery needs a registry")
	}
	if service == "" {
		return errors.New("rpc: discovery needs a service name")
	}
	if update == nil {
		return errors.New("rpc: discovery needs an update function")
	}
	p := &publisher{update: update}
	backoff := d.minBackoff
	for {
		w, err := d.reg.Watch(registry.WatchService(service))
		if err == nil {
			started := time.Now()
			err = d.follow(ctx, w, service, p)
			w.Stop()
			if err == nil {
				return nil // ctx ended
			}
			if time.Since(started) > d.maxBackoff {
				backoff = d.minBackoff // it ran fine for a while: not a failure loop
			}
		}
		d.log.Warn("registry: watch failed; re-creating it", "service", service, "error", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, d.maxBackoff)
	}
}

// follow reads the list, then re-reads it on each event of w, every resync
// interval, and after a failed read, until ctx ends (nil) or w fails (its
// error).
func (d *Discovery) follow(ctx context.Context, w registry.Watcher, service string, p *publisher) error {
	// The reader only signals, and the signal coalesces: Next is called
	// again at once, so the memory registry (which gives a watcher 10ms to
	// take an event) does not drop events while a read or update runs.
	changed := make(chan struct{}, 1)
	failed := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Next(); err != nil {
				failed <- err
				return
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()

	resync := time.NewTicker(d.resync)
	defer resync.Stop()
	var retry *time.Timer
	var retryC <-chan time.Time
	settle := time.NewTimer(d.settle)
	settle.Stop()
	var settleC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
		settle.Stop()
	}()
	backoff := d.minBackoff
	read := func() {
		addrs, err := d.addrs(service)
		if err != nil {
			d.log.Warn("registry: listing instances failed; keeping the last list", "service", service,
				"error", err, "retry_in", backoff)
			if retry == nil {
				retry = time.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			retryC = retry.C
			backoff = min(2*backoff, d.maxBackoff)
			return
		}
		retryC = nil
		backoff = d.minBackoff
		p.publish(addrs)
	}

	read()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			if err == nil {
				err = errors.New("watcher ended")
			}
			return err
		case <-changed:
			read()
			settle.Reset(d.settle) // read again settle after the last event
			settleC = settle.C
		case <-settleC:
			settleC = nil
			read()
		case <-resync.C:
			read()
		case <-retryC:
			read()
		}
	}
}

// addrs reads the service's node addresses, sorted and de-duplicated. An
// unknown service is an empty list, not an error.
func (d *Discovery) addrs(service string) ([]string, error) {
	svcs, err := d.reg.GetService(service)
	if errors.Is(err, registry.ErrNotFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	addrs := []string{}
	for _, s := range svcs {
		if s == nil {
			continue
		}
		for _, n := range s.Nodes {
			if n != nil && n.Address != "" {
				addrs = append(addrs, n.Address)
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// publisher calls update when the list differs from the last one given.
type publisher struct {
	update    func([]string)
	last      []string
	published bool
}

func (p *publisher) publish(addrs []string) {
	if p.published && slices.Equal(p.last, addrs) {
		return
	}
	p.last, p.published = addrs, true
	p.update(slices.Clone(addrs))
}

// sleep waits for d or ctx, reporting false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
