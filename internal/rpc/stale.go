package rpc

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/telemetry"
)

// ErrServingFromCache is StaleRegistry.Check's answer while the registry
// is unreachable: a degraded state, not an unready one.
var ErrServingFromCache = errors.New("registry unreachable, serving from cache")

// StaleRegistry is a Registry whose lookups outlive a registry outage
// (stale-while-error): it keeps the last list each lookup returned and,
// once a lookup fails, answers from that list at once until a lookup
// succeeds again (tried in the background, one at a time per service).
// Without it every caller's lookup waited out the registry timeout (5s)
// and failed, so an etcd outage took all traffic down although every
// instance was running. An instance that really left is still dropped:
// its connections fail and the selector skips it. Registrations pass
// through untouched (the renewal loops retry them on their own).
type StaleRegistry struct {
	Registry
	log *slog.Logger

	mu         sync.Mutex
	last       map[string][]*registry.Service
	failing    bool
	refreshing map[string]bool
}

// NewStaleRegistry wraps reg. It logs to slog.Default().
func NewStaleRegistry(reg Registry) *StaleRegistry {
	return &StaleRegistry{Registry: reg, log: slog.Default(),
		last: map[string][]*registry.Service{}, refreshing: map[string]bool{}}
}

// GetService is the registry's answer, or while the registry fails the
// last answer it gave for name.
func (s *StaleRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	s.mu.Lock()
	last, known := s.last[name]
	if s.failing && known {
		s.refreshLocked(name, opts)
		s.mu.Unlock()
		return last, nil
	}
	s.mu.Unlock()
	svcs, err := s.Registry.GetService(name, opts...)
	return s.record(name, svcs, err)
}

// refreshLocked starts a background lookup of name unless one runs;
// s.mu is held.
func (s *StaleRegistry) refreshLocked(name string, opts []registry.GetOption) {
	if !s.refreshing[name] {
		s.refreshing[name] = true
		go s.refresh(name, opts)
	}
}

func (s *StaleRegistry) refresh(name string, opts []registry.GetOption) {
	svcs, err := s.Registry.GetService(name, opts...)
	_, _ = s.record(name, svcs, err)
	s.mu.Lock()
	s.refreshing[name] = false
	s.mu.Unlock()
}

// record keeps a successful answer (an unknown service is one too) and
// switches between fresh and stale answers, logging and counting each
// switch.
func (s *StaleRegistry) record(name string, svcs []*registry.Service, err error) ([]*registry.Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil || errors.Is(err, registry.ErrNotFound) {
		if err == nil {
			s.last[name] = svcs
		} else {
			delete(s.last, name)
		}
		if s.failing {
			s.failing = false
			telemetry.RegistryStale.Set(0)
			s.log.Info("registry: reachable again; instance lists are fresh", "service", name)
		}
		return svcs, err
	}
	last, known := s.last[name]
	if !known {
		return nil, err
	}
	if !s.failing {
		s.failing = true
		telemetry.RegistryStale.Set(1)
		s.log.Warn("registry: unreachable; serving the last known instances from cache", "service", name, "error", err)
	}
	return last, nil
}

// Check is a readiness check: ErrServingFromCache while lookups are
// answered from the last known lists, nil otherwise. While failing it also
// looks the known services up again in the background: a caller whose
// lookups are cached (go-micro's selector re-reads each minute) would
// otherwise go on reporting the outage long after it ended.
func (s *StaleRegistry) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing {
		return nil
	}
	for name := range s.last {
		s.refreshLocked(name, nil)
	}
	return ErrServingFromCache
}
