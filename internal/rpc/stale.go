package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/telemetry"
)

// ErrServingFromCache is StaleRegistry.Check's answer while the registry
// is unreachable: a degraded state, not an unready one.
var ErrServingFromCache = errors.New("registry unreachable, serving from cache")

// StaleRegistry is a Registry whose lookups outlive a registry outage
// (stale-while-error): it keeps the last list each lookup returned and,
// once the registry fails, answers from that list at once until the
// registry answers again (lookups are retried in the background, one at a
// time per service). Without it every caller's lookup waited out the
// registry timeout (5s) and failed, so an etcd outage took all traffic down
// although every instance was running. An instance that really left is
// still dropped: its connections fail and the selector skips it.
//
// Three things tell it the registry failed: a lookup, a registration (the
// renewals of a serving process, every TTL/3) and the probe Check starts.
// After an outage longer than the registration TTL, etcd comes back
// without the registrations (their leases ran out) until each instance's
// next renewal writes it again; for the grace period after the registry
// answers again, an empty answer for a service with known instances is
// therefore not believed and the last list stands.
type StaleRegistry struct {
	Registry
	log   *slog.Logger
	grace time.Duration
	now   func() time.Time

	mu        sync.Mutex
	last      map[string][]*registry.Service
	failing   bool
	recovered time.Time          // when the registry last answered again after failing
	lookups   map[string]*lookup // under way, by service name
	probing   bool
}

// NewStaleRegistry wraps reg; grace is how long after an outage an empty
// answer is not believed (the registration TTL is right: by then every
// live instance has renewed). It logs to slog.Default().
func NewStaleRegistry(reg Registry, grace time.Duration) *StaleRegistry {
	return &StaleRegistry{Registry: reg, log: slog.Default(), grace: grace, now: time.Now,
		last: map[string][]*registry.Service{}, lookups: map[string]*lookup{}}
}

// Close closes the registry underneath when it holds connections
// (EtcdRegistry); call it once the process has deregistered and stopped
// looking services up.
func (s *StaleRegistry) Close() error {
	if c, ok := s.Registry.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// lookupPatience is how long a lookup of a service with a known list waits
// for the registry before answering that list (the lookup goes on in the
// background and its answer is kept). A healthy etcd answers in
// milliseconds; an unreachable one takes the whole registry timeout (5s) to
// fail, which would hold up requests and outlast the 1s a readiness probe
// may take at the start of every outage.
const lookupPatience = 500 * time.Millisecond

var errRegistrySlow = fmt.Errorf("no answer within %v", lookupPatience)

// GetService is the registry's answer, or while the registry fails (or is
// slower than lookupPatience) the last answer it gave for name.
func (s *StaleRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	s.mu.Lock()
	last, known := s.last[name]
	l := s.lookupLocked(name, opts)
	failing := s.failing
	s.mu.Unlock()
	switch {
	case failing && known:
		return last, nil // the lookup goes on in the background
	case !known:
		<-l.done
		return l.svcs, l.err
	}
	wait := time.NewTimer(lookupPatience)
	defer wait.Stop()
	select {
	case <-l.done:
		return l.svcs, l.err
	case <-wait.C:
		// Slower than a healthy etcd ever is: served from cache until the
		// registry answers (the lookup under way may be that answer).
		s.mu.Lock()
		s.observeLocked(errRegistrySlow)
		s.mu.Unlock()
		return last, nil
	}
}

// lookup is one registry lookup of a service, shared by every caller that
// asks while it runs; svcs and err are set before done is closed.
type lookup struct {
	done chan struct{}
	svcs []*registry.Service
	err  error
}

// lookupLocked returns the lookup of name under way, starting one if none
// is: one request at a time per service reaches the registry, however many
// callers wait, and a slow one (an outage) is not stacked up. s.mu is held.
func (s *StaleRegistry) lookupLocked(name string, opts []registry.GetOption) *lookup {
	if l, ok := s.lookups[name]; ok {
		return l
	}
	l := &lookup{done: make(chan struct{})}
	s.lookups[name] = l
	go func() {
		svcs, err := s.Registry.GetService(name, opts...)
		l.svcs, l.err = s.record(name, svcs, err)
		s.mu.Lock()
		delete(s.lookups, name)
		s.mu.Unlock()
		close(l.done)
	}()
	return l
}

// Register passes through; its outcome tells whether the registry answers.
func (s *StaleRegistry) Register(svc *registry.Service, opts ...registry.RegisterOption) error {
	err := s.Registry.Register(svc, opts...)
	s.mu.Lock()
	s.observeLocked(err)
	s.mu.Unlock()
	return err
}

// record keeps a successful answer (an unknown service is one too, unless
// in the grace period after an outage) and falls back on the last list
// when the registry failed.
func (s *StaleRegistry) record(name string, svcs []*registry.Service, err error) ([]*registry.Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	notFound := errors.Is(err, registry.ErrNotFound)
	if err != nil && !notFound {
		s.observeLocked(err)
		if last, known := s.last[name]; known {
			return last, nil
		}
		return nil, err
	}
	s.observeLocked(nil)
	last, known := s.last[name]
	switch {
	case nodeCount(svcs) > 0:
		s.last[name] = svcs
	case known && s.now().Before(s.recovered.Add(s.grace)):
		return last, nil // the instances have not renewed since the outage yet
	default:
		delete(s.last, name)
	}
	return svcs, err
}

// observeLocked switches between fresh and stale answers on the outcome of
// a registry request (nil: it answered), logging and counting each switch;
// s.mu is held.
func (s *StaleRegistry) observeLocked(err error) {
	switch {
	case err != nil && !s.failing:
		s.failing = true
		telemetry.RegistryStale.Set(1)
		s.log.Warn("registry: unreachable; serving the last known instances from cache", "error", err)
	case err == nil && s.failing:
		s.failing = false
		s.recovered = s.now()
		telemetry.RegistryStale.Set(0)
		s.log.Info("registry: reachable again; instance lists are fresh")
	}
}

// pinger is a registry that can be asked whether it answers (EtcdRegistry).
type pinger interface {
	Ping(ctx context.Context) error
}

// Check is a readiness check: ErrServingFromCache while the registry is
// failing, nil otherwise. It starts a probe of the registry in the
// background (one at a time) and answers from what is known, so /readyz
// never waits on an unreachable etcd, and a process whose lookups are all
// cached (go-micro's selector re-reads each minute) still notices an
// outage, and its end. While failing it also looks the known services up
// again.
func (s *StaleRegistry) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.Registry.(pinger); ok && !s.probing {
		s.probing = true
		go s.probe(p)
	}
	if !s.failing {
		return nil
	}
	for name := range s.last {
		s.lookupLocked(name, nil)
	}
	return ErrServingFromCache
}

func (s *StaleRegistry) probe(p pinger) {
	err := p.Ping(context.Background()) // bounded by the registry's timeout
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probing = false
	s.observeLocked(err)
}

// nodeCount is the number of nodes in svcs.
func nodeCount(svcs []*registry.Service) int {
	n := 0
	for _, s := range svcs {
		n += len(s.Nodes)
	}
	return n
}
