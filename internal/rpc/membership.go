package rpc

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go-micro.dev/v6/registry"
)

// membership is the registry a server registers through when its
// membership depends on a health check (ServerConfig.Healthy): while the
// check fails, the instance is deregistered and its periodic renewals are
// dropped, so callers stop being offered an instance that can only answer
// "unavailable"; once the check passes it registers again at once. The lock
// is held across registry calls so a renewal cannot race a deregistration
// and put the instance back.
type membership struct {
	Registry
	log *slog.Logger

	mu      sync.Mutex
	out     bool // deregistered because the check fails
	svc     *registry.Service
	regOpts []registry.RegisterOption
}

func newMembership(reg Registry, log *slog.Logger) *membership {
	return &membership{Registry: reg, log: log}
}

// Register registers s unless the instance is out; it remembers s to
// register it again on recovery.
func (m *membership) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.svc, m.regOpts = s, opts
	if m.out {
		return nil
	}
	return m.Registry.Register(s, opts...)
}

// set records the check's outcome, leaving or rejoining the registry when
// it changes.
func (m *membership) set(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil && !m.out:
		m.out = true
		m.log.Warn("leaving the registry until a dependency answers again", "error", err)
		if m.svc != nil {
			if derr := m.Registry.Deregister(m.svc); derr != nil {
				m.log.Warn("registry: deregistering failed; the registration expires on its own", "error", derr)
			}
		}
	case err == nil && m.out:
		m.out = false
		m.log.Info("dependencies answer again; rejoining the registry")
		if m.svc != nil {
			if rerr := m.Registry.Register(m.svc, m.regOpts...); rerr != nil {
				m.log.Warn("registry: registering again failed; the next renewal retries", "error", rerr)
			}
		}
	}
}

// watch runs check every interval (each bounded by it) until stop is
// called.
func (m *membership) watch(check func(context.Context) error, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, interval)
			err := check(cctx)
			ccancel()
			if ctx.Err() == nil {
				m.set(err)
			}
		}
	}()
	return func() { cancel(); <-done }
}
