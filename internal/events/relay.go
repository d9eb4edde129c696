package events

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc/internal/telemetry"
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
	// Destination names the exchange Publisher sends to in the producer
	// spans; default Exchange (a namespaced deployment's is another).
	Destination string
	Interval    time.Duration // default 100ms
	Batch       int           // default 100
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
		n, err := r.Outbox.DrainOutbox(ctx, batch, r.publish)
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

// publish sends one batch inside an "outbox relay batch" span; each message
// gets a producer span in the trace of the request that wrote it (its
// traceparent header, from the outbox row; see startPublish), linked to the
// batch.
func (r *Relay) publish(ctx context.Context, msgs []Message) error {
	ctx, batch := tracer.Start(ctx, "outbox relay batch", trace.WithNewRoot(),
		trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(msgs))))
	defer batch.End()
	spans := make([]trace.Span, len(msgs))
	for i := range msgs {
		parent := msgs[i].Headers["traceparent"]
		if sc := remoteParent(parent); sc.IsValid() {
			batch.AddLink(trace.Link{SpanContext: sc})
		}
		msgs[i].Headers = nil // replaced by the producer span's context
		spans[i] = startPublish(ctx, &msgs[i], parent, cmp.Or(r.Destination, Exchange))
	}
	err := r.Publisher.Publish(ctx, msgs)
	endSpans(spans, err)
	if err != nil {
		batch.SetStatus(codes.Error, "publish failed")
		telemetry.RelayFailures.Inc()
		return err
	}
	telemetry.RelayPublished.Add(float64(len(msgs)))
	return nil
}
