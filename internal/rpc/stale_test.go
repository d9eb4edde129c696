package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/testenv"
)

// switchedRegistry is go-micro's memory registry whose requests fail while
// down is set: the registry's answers, with an outage switched on and off.
type switchedRegistry struct {
	registry.Registry
	mu   sync.Mutex
	down bool
}

var errRegistryDown = errors.New("registry down")

func (f *switchedRegistry) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errRegistryDown
	}
	return nil
}

func (f *switchedRegistry) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *switchedRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Registry.GetService(name, opts...)
}

func (f *switchedRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Registry.Register(s, opts...)
}

func (f *switchedRegistry) Ping(context.Context) error { return f.fail() }

// TestStaleRegistryGraceAfterOutage: during an outage lookups answer the
// last list and Check says so; once the registry answers again with no
// instance (their leases ran out), the last list stands for the grace
// period, a fresh non-empty list replaces it at once, and after the grace
// an empty answer is believed.
func TestStaleRegistryGraceAfterOutage(t *testing.T) {
	inner := &switchedRegistry{Registry: registry.NewMemoryRegistry()}
	s := NewStaleRegistry(inner, 15*time.Second)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	if err := s.Register(testService("a")); err != nil {
		t.Fatal(err)
	}
	lookup := func(when string, wantNodes int) {
		t.Helper()
		svcs, err := s.GetService("user.api")
		if nodeCount(svcs) != wantNodes || (wantNodes > 0) != (err == nil) {
			t.Errorf("%s: GetService = %d nodes, %v; want %d", when, nodeCount(svcs), err, wantNodes)
		}
	}
	lookup("before the outage", 1)

	inner.set(true)
	if err := s.Register(testService("a")); err == nil {
		t.Fatal("a renewal during the outage succeeded")
	}
	if err := s.Check(context.Background()); !errors.Is(err, ErrServingFromCache) {
		t.Errorf("Check during the outage = %v, want ErrServingFromCache", err)
	}
	lookup("during the outage", 1)

	// etcd is back without the registration (the lease ran out).
	if err := inner.Deregister(testService("a")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	inner.set(false)
	checkUntil(t, s, nil) // the probe Check starts finds the registry back
	lookup("just after the outage", 1)
	now = now.Add(14 * time.Second)
	lookup("at the end of the grace", 1)
	now = now.Add(2 * time.Second)
	lookup("after the grace", 0)

	if err := inner.Register(testService("b")); err != nil {
		t.Fatal(err)
	}
	lookup("once registered again", 1)
}

// TestStaleRegistryCheckProbes: a process whose lookups are all cached
// still learns of an outage, and of its end, from the probe Check starts
// (Check never waits for it).
func TestStaleRegistryCheckProbes(t *testing.T) {
	inner := &switchedRegistry{Registry: registry.NewMemoryRegistry()}
	s := NewStaleRegistry(inner, time.Second)
	checkUntil(t, s, nil)
	inner.set(true)
	checkUntil(t, s, ErrServingFromCache)
	inner.set(false)
	checkUntil(t, s, nil)
}

// checkUntil calls s.Check until it answers want; Check answers from the
// last probe and starts the next, so the answer follows the registry.
func checkUntil(t *testing.T, s *StaleRegistry, want error) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("Check to answer %v", want), func() bool {
		return errors.Is(s.Check(context.Background()), want)
	})
}
