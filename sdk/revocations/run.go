package revocations

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/sdk/auth"
)

// Run keeps the feed connected until ctx ends: connect, bind this
// process's queue, catch up, then apply events as they arrive; on a lost
// connection, go down and start over after a backoff.
func (f *Feed) Run(ctx context.Context) error {
	delay := f.cfg.Retry
	for {
		wasLive, err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.setState(StateDown, err)
		if wasLive {
			delay = f.cfg.Retry
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*f.cfg.Retry)
	}
}

// session runs one connection until it fails or ctx ends, and reports
// whether it went live.
func (f *Feed) session(ctx context.Context) (live bool, _ error) {
	conn, err := amqp.DialConfig(f.cfg.URL, amqp.Config{Heartbeat: f.cfg.Heartbeat,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			return d.DialContext(ctx, network, addr)
		}})
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	deliveries, err := f.subscribe(conn)
	if err != nil {
		return false, err
	}
	// Deliveries are applied while the catch-up runs: both only add to
	// the set, so their order does not matter.
	done := make(chan error, 1)
	go func() { done <- f.apply(deliveries) }()
	if err := f.catchUp(ctx); err != nil {
		return false, err
	}
	f.setState(StateLive, nil)
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case err := <-closed:
		if err == nil {
			return true, errors.New("connection closed")
		}
		return true, fmt.Errorf("connection lost: %w", err)
	case err := <-done:
		return true, err
	}
}

// subscribe declares the exchange (as the user service does) and a queue
// of this process's own bound to revocations, and starts consuming it.
func (f *Feed) subscribe(conn *amqp.Connection) (<-chan amqp.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.ExchangeDeclare(f.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare exchange %s: %w", f.cfg.Exchange, err)
	}
	// Server-named, exclusive and auto-deleted: one queue per process,
	// gone with its connection. Not durable: nothing in it outlives us.
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return nil, fmt.Errorf("declare queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, auth.RevocationRoutingKey, f.cfg.Exchange, false, nil); err != nil {
		return nil, fmt.Errorf("bind queue: %w", err)
	}
	// Auto-ack: a revocation is applied in memory the moment it arrives,
	// and a lost connection is repaired by the catch-up, not redelivery.
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return d, nil
}

// apply adds every delivered revocation to the set until the channel
// closes. A malformed one is logged and skipped: it names nothing we
// could refuse.
func (f *Feed) apply(deliveries <-chan amqp.Delivery) error {
	for d := range deliveries {
		r, err := auth.ParseRevocation(d.Body)
		if err != nil {
			f.cfg.Logger.Warn("revocation feed: malformed event skipped", "error", err, "message_id", d.MessageId)
			continue
		}
		f.set.Apply(r)
	}
	return errors.New("deliveries ended")
}

// catchUp applies every revocation still in force.
func (f *Feed) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var since time.Time // everything still in force
	if f.cfg.Lookback > 0 {
		since = f.cfg.Now().Add(-f.cfg.Lookback)
	}
	revs, err := f.cfg.CatchUp.RevocationsSince(ctx, since)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	for _, r := range revs {
		f.set.Apply(r)
	}
	return nil
}
