package events

import (
	"context"
	"log/slog"
	"time"
)

// Outbox is the relay's view of the store: it hands out pending events as
// the messages to publish (the store depends on this package, not the
// other way round).
type Outbox interface {
	DrainOutbox(ctx context.Context, limit int, publish func(context.Context, []Message) error) (int, error)
}

// Relay moves events from the outbox to the broker. It polls: a pending
// event waits at most Interval, and an idle poll is one indexed query.
type Relay struct {
	Outbox    Outbox
	Publisher Publisher
	Log       *slog.Logger
	Interval  time.Duration // default 100ms
	Batch     int           // default 100
}

// Run relays until ctx ends. A failed publish (broker down) keeps the
// events in the outbox; the relay logs the outage once and retries with
// backoff up to 5s, then drains everything that accumulated.
func (r *Relay) Run(ctx context.Context) error {
	interval, batch := r.Interval, r.Batch
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if batch <= 0 {
		batch = 100
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	wait, failing := interval, false
	for {
		n, err := r.Outbox.DrainOutbox(ctx, batch, r.Publisher.Publish)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				log.Warn("event relay: publish failed; events stay in the outbox", "error", err)
				failing = true
			}
			wait = min(wait*2, 5*time.Second)
		default:
			if failing {
				log.Info("event relay: publishing again")
				failing = false
			}
			wait = interval
			if n == batch {
				continue // more waiting: drain without sleeping
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
