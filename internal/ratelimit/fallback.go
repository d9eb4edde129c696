package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRetryInterval is how long a Fallback leaves a failed primary alone
// before trying it again.
const DefaultRetryInterval = time.Second

// Fallback is a Limiter that uses a primary (Redis) and, while the primary
// cannot decide, a local one. The trade-off while it falls back: limits are
// per instance, so N instances allow up to N times the rule — degraded but
// still bounded, whereas failing open would remove the limit altogether
// and failing closed would take the endpoints down with Redis.
//
// After a failure the primary is skipped for RetryInterval, then one
// request tries it; success switches back. The switch is logged once each
// way ("rate limiter unavailable, limiting per instance" at warn, "rate
// limiter available again" at info).
type Fallback struct {
	primary, local Limiter
	log            *slog.Logger
	// RetryInterval (default DefaultRetryInterval) may be set before the
	// first Allow.
	RetryInterval time.Duration

	down    atomic.Bool
	mu      sync.Mutex
	err     error
	retryAt time.Time
}

// NewFallback returns a Fallback from primary to local; log may be nil.
func NewFallback(primary, local Limiter, log *slog.Logger) *Fallback {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fallback{primary: primary, local: local, log: log, RetryInterval: DefaultRetryInterval}
}

// Allow asks the primary, or the local limiter while the primary is down.
// It returns an error only when the caller's context has ended.
func (f *Fallback) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	if f.usePrimary() {
		ok, retry, err := f.primary.Allow(ctx, key)
		if err == nil {
			f.succeeded()
			return ok, retry, nil
		}
		if callerDone(ctx) {
			return false, 0, err // the caller gave up: says nothing about Redis
		}
		f.failed(err)
	}
	return f.local.Allow(ctx, key)
}

// Healthy returns nil while the primary is in use, else its last error.
func (f *Fallback) Healthy() error {
	if !f.down.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		return nil
	}
	return fmt.Errorf("rate limiter unavailable (limiting per instance): %w", f.err)
}

// usePrimary reports whether to ask the primary: always while it works,
// and once per RetryInterval while it does not.
func (f *Fallback) usePrimary() bool {
	if !f.down.Load() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.down.Load() || !now.Before(f.retryAt) {
		f.retryAt = now.Add(f.interval()) // this caller is the probe
		return true
	}
	return false
}

func (f *Fallback) succeeded() {
	if !f.down.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down.CompareAndSwap(true, false) {
		f.err = nil
		f.log.Info("rate limiter available again")
	}
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	f.retryAt = time.Now().Add(f.interval())
	if f.down.CompareAndSwap(false, true) {
		f.log.Warn("rate limiter unavailable, limiting per instance", "err", err)
	}
}

func (f *Fallback) interval() time.Duration {
	if f.RetryInterval > 0 {
		return f.RetryInterval
	}
	return DefaultRetryInterval
}

// callerDone reports whether ctx has ended or its deadline has passed (by
// the clock: the client may give up at the deadline before the context's
// timer has fired).
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}
