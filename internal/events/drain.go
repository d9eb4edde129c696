package events

import (
	"context"
	"sync/atomic"
	"time"
)

// DefaultDrainTimeout is how long a handler in flight may go on after its
// consumer was stopped, unless the broker is told otherwise.
const DefaultDrainTimeout = 15 * time.Second

// HandlerContext returns the context a consumer stopped by ctx runs its
// handlers on. It outlives ctx by drain: a handler in flight at the stop
// finishes (a reset mail that went out is recorded as sent) instead of
// failing half-way, and with a broker that redelivers, being sent a second
// time. Only a handler still running drain after the stop is cancelled.
// release ends the context; call it once the handlers have returned.
func HandlerContext(ctx context.Context, drain time.Duration) (hctx context.Context, release func()) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var timer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(ctx, func() { timer.Store(time.AfterFunc(drain, cancel)) })
	return hctx, func() {
		stop()
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		cancel()
	}
}
