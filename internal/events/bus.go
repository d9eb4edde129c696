package events

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Bus is the in-process broker of the embedded default. It keeps the
// behaviour consumers rely on from RabbitMQ — topic routing by exact key,
// a queue per subscription that buffers while nobody consumes, retries with
// backoff, dead-lettering after MaxAttempts — but holds messages in memory:
// a message published and not yet handled is lost if the process dies. The
// outbox makes that acceptable in the embedded mode only because the relay
// and the consumers live in the one process that also owns the database;
// use RabbitMQ wherever the two can fail apart.
type Bus struct {
	log *slog.Logger
	// Drain is how long a handler in flight may go on after Consume's
	// context ended (HandlerContext); NewBus sets DefaultDrainTimeout.
	Drain  time.Duration
	mu     sync.Mutex
	queues map[string]*busQueue
}

type busQueue struct {
	keys []string
	ch   chan busMsg
	dead []DeadLetter
}

type busMsg struct {
	m       Message
	attempt int
}

// DeadLetter is a message the Bus gave up on.
type DeadLetter struct {
	Message Message
	Err     string
}

// NewBus returns an empty bus.
func NewBus(log *slog.Logger) *Bus {
	if log == nil {
		log = slog.Default()
	}
	return &Bus{log: log, Drain: DefaultDrainTimeout, queues: map[string]*busQueue{}}
}

const busQueueLen = 10000

// queue declares (or returns) a subscription's queue, as RabbitMQ's
// queue-declare plus bindings would.
func (b *Bus) queue(sub Subscription) *busQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[sub.Queue]
	if !ok {
		q = &busQueue{ch: make(chan busMsg, busQueueLen)}
		b.queues[sub.Queue] = q
	}
	for _, k := range sub.RoutingKeys {
		if !slices.Contains(q.keys, k) {
			q.keys = append(q.keys, k)
		}
	}
	return q
}

// Declare creates a subscription's queue before any consumer runs, so
// messages published before the consumer starts wait for it.
func (b *Bus) Declare(sub Subscription) { b.queue(sub) }

// Publish routes each message to every queue bound to its key. It fails
// (and the relay retries later) rather than block when a queue is full.
func (b *Bus) Publish(ctx context.Context, msgs []Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range msgs {
		for name, q := range b.queues {
			if !slices.Contains(q.keys, m.RoutingKey) {
				continue
			}
			select {
			case q.ch <- busMsg{m: m, attempt: 1}:
			default:
				return &busFullError{queue: name}
			}
		}
	}
	return nil
}

type busFullError struct{ queue string }

func (e *busFullError) Error() string { return "events: in-process queue " + e.queue + " is full" }

// Consume handles the subscription's messages until ctx ends, and returns
// once the handlers in flight have finished (HandlerContext: for up to
// b.Drain).
func (b *Bus) Consume(ctx context.Context, sub Subscription, h Handler) error {
	sub = sub.Defaults()
	h = Traced(sub, h)
	q := b.queue(sub)
	hctx, release := HandlerContext(ctx, b.Drain)
	defer release()
	var wg sync.WaitGroup
	for range sub.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case bm := <-q.ch:
					b.handle(hctx, sub, q, bm, h)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (b *Bus) handle(ctx context.Context, sub Subscription, q *busQueue, bm busMsg, h Handler) {
	err := h(ctx, bm.m)
	if err == nil {
		CountDelivery(sub.Queue, "ok")
		return
	}
	if IsPermanent(err) || bm.attempt >= sub.MaxAttempts {
		CountDelivery(sub.Queue, "dead_lettered")
		b.log.ErrorContext(ctx, "event dead-lettered", "event.id", bm.m.ID, "event.action", bm.m.RoutingKey,
			"queue", sub.Queue, "attempt", bm.attempt, "error", err)
		b.mu.Lock()
		q.dead = append(q.dead, DeadLetter{Message: bm.m, Err: err.Error()})
		b.mu.Unlock()
		return
	}
	CountDelivery(sub.Queue, "retry")
	b.log.WarnContext(ctx, "event handling failed, will retry", "event.id", bm.m.ID, "queue", sub.Queue,
		"attempt", bm.attempt, "error", err)
	delay := sub.Delay(bm.attempt)
	bm.attempt++
	time.AfterFunc(delay, func() {
		select {
		case q.ch <- bm:
		default:
			b.log.Error("event dropped: in-process queue full on retry", "event.id", bm.m.ID, "queue", sub.Queue)
		}
	})
}

// DeadLetters returns the messages the queue gave up on.
func (b *Bus) DeadLetters(queue string) []DeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q, ok := b.queues[queue]; ok {
		return slices.Clone(q.dead)
	}
	return nil
}
