// Package events moves committed changes from the outbox to their
// consumers: the relay publishes outbox rows to a broker and deletes them
// only after the broker confirmed them; consumers ack a message only after
// their work is done. The broker is RabbitMQ in production (package
// events/rabbitmq) or the in-process Bus of the embedded default; both
// implement the interfaces here, so relay and worker code is the same.
package events

import (
	"context"
	"errors"
	"time"
)

// Exchange is the topic exchange user events are published to; the routing
// key is the event type (user.created, ...).
const Exchange = "user.events"

// Message is one event on the wire.
type Message struct {
	ID         string // event ID; also the AMQP message-id
	RoutingKey string // event type
	Body       []byte // JSON, see user.Event
	// Headers carry the W3C trace context (traceparent, tracestate) from
	// the relay's publish to the consumer; AMQP headers on RabbitMQ.
	Headers map[string]string
}

// Publisher delivers messages to the exchange. Publish returns nil only
// after the broker has confirmed every message (publisher confirms), so the
// caller may then forget them.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) error
}

// Handler processes one delivery. nil acks it; an error schedules a retry
// with backoff; a Permanent error (or running out of attempts) parks the
// message in the queue's dead-letter queue.
type Handler func(ctx context.Context, m Message) error

// Subscription describes a durable queue bound to routing keys.
type Subscription struct {
	Queue       string   // e.g. "usersvc.mailer"
	RoutingKeys []string // e.g. ["user.password_reset_requested"]
	// MaxAttempts before a failing message is dead-lettered; default 5.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled each attempt
	// up to MaxBackoff; defaults 1s and 1m.
	Backoff, MaxBackoff time.Duration
	// Concurrency is how many messages are handled at once; default 1.
	Concurrency int
}

// Subscriber runs handlers for subscriptions until ctx ends.
type Subscriber interface {
	Consume(ctx context.Context, sub Subscription, h Handler) error
}

// permanent marks an error that retrying cannot fix (a malformed body).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the message is dead-lettered at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Defaults fills the zero fields of a subscription.
func (s Subscription) Defaults() Subscription {
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 5
	}
	if s.Backoff <= 0 {
		s.Backoff = time.Second
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = time.Minute
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 1
	}
	return s
}

// Delay is the backoff before retry number attempt (1-based).
func (s Subscription) Delay(attempt int) time.Duration {
	d := s.Backoff
	for i := 1; i < attempt && d < s.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.MaxBackoff)
}
