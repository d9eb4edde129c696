// Package rabbitmq is the RabbitMQ implementation of events.Publisher and
// events.Subscriber, used wherever the relay and the consumers can fail
// apart (the in-process events.Bus covers the embedded default).
//
// # Topology
//
// Declared idempotently on every (re)connect, so a broker that lost its
// definitions (or a fresh one) is set up again without operator action:
//
//	user.events          durable topic exchange; routing key = event type
//	<queue>              durable queue, bound to user.events once per
//	                     routing key of the Subscription
//	<queue>.retry        durable queue without consumers; arguments
//	                     x-dead-letter-exchange "" and
//	                     x-dead-letter-routing-key <queue>
//	<queue>.dlq          durable queue, read by operators only
//
// A failed delivery is republished (default exchange, publisher confirm) to
// <queue>.retry with the AMQP expiration property set to the backoff in ms
// (Subscription.Delay); when it expires RabbitMQ dead-letters it through the
// default exchange back into <queue>. Only the head of a queue expires, so a
// message can wait behind one with a longer delay: retry delays are lower
// bounds, late by at most MaxBackoff. A Permanent error, or the failure of
// attempt MaxAttempts, republishes the message to <queue>.dlq instead. In
// both cases the original is acked only after the broker confirmed the
// copy; if republishing fails it is nacked with requeue, so a message is
// never lost, at the price of at-least-once delivery: handlers must be
// idempotent (the outbox relay is at-least-once anyway).
//
// # Headers
//
//	x-attempt      int: number of the delivery attempt, 1 when absent
//	x-routing-key  string: the event type, kept because retries travel
//	               through the default exchange under the queue's name
//	x-error        string (dead-lettered messages only): the last error
//
// # Connection
//
// A Broker holds one connection and re-dials it by itself with backoff
// (100ms doubling to 5s) when it drops; Publish fails fast meanwhile (the
// relay keeps the events in the outbox and retries) and consumers resume
// after the reconnect. Publish also fails fast while RabbitMQ blocks
// publishers because of a memory or disk alarm. Publishing and consuming
// share the connection, so an alarm also delays consumers' acks; two
// connections would avoid that at the price of twice the reconnect state.
//
// amqp091's experimental automatic recovery is not used: re-running our
// own idempotent setup after each dial is simpler to reason about than
// replaying recorded topology.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/events"
)

var (
	// ErrClosed is returned by a Broker's methods after Close.
	ErrClosed = errors.New("rabbitmq broker closed")
	// ErrNotConnected is returned while the connection is down and the
	// Broker is reconnecting.
	ErrNotConnected = errors.New("not connected to rabbitmq")
)

var (
	_ events.Publisher  = (*Broker)(nil)
	_ events.Subscriber = (*Broker)(nil)
)

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// dialTimeout bounds the TCP connect plus the AMQP handshake, so a
	// blackholed broker cannot stall a reconnect attempt (or Dial) for the
	// library's default of 30s.
	dialTimeout = 5 * time.Second
	heartbeat   = 10 * time.Second
)

// Broker is a self-healing connection to RabbitMQ. It is safe for
// concurrent use.
type Broker struct {
	url      string
	exchange string // events.Exchange, or a namespaced one (WithExchange)
	// drain bounds how long handlers in flight may run on after Consume's
	// context ends (WithDrainTimeout).
	drain time.Duration
	host  string // url without credentials, for messages
	log   *slog.Logger

	// life ends at Close: it stops the supervisor, reconnect attempts and
	// consumers.
	life     context.Context
	stop     context.CancelFunc
	done     chan struct{} // closed when the supervisor has returned
	closeErr error         // set by the supervisor before done

	mu      sync.Mutex
	conn    *amqp.Connection // nil while disconnected
	changed chan struct{}    // closed and replaced whenever conn changes
	// blocked is the reason RabbitMQ gave for blocking conn's publishers
	// (connection.blocked: a memory or disk alarm), "" when it does not.
	blocked string

	pub publisher
}

// Exchange is the exchange the broker publishes to and binds queues to.
func (b *Broker) Exchange() string { return b.exchange }

// Option adjusts a Broker at Dial.
type Option func(*Broker)

// WithExchange publishes to and binds queues on exchange instead of
// events.Exchange, so deployments sharing a broker (and vhost) stay apart.
func WithExchange(exchange string) Option { return func(b *Broker) { b.exchange = exchange } }

// DefaultDrainTimeout is WithDrainTimeout's default.
const DefaultDrainTimeout = events.DefaultDrainTimeout

// WithDrainTimeout sets how long a handler in flight may go on once
// Consume's context ends (the process's shutdown timeout); after it the
// handler's context is cancelled and its message goes back on the queue.
func WithDrainTimeout(d time.Duration) Option { return func(b *Broker) { b.drain = d } }

// Dial connects to the broker at url (amqp://user:pass@host:5672/vhost)
// and declares the exchange. It fails when the broker is unreachable now,
// so a wrong URL or credentials stop startup loudly instead of being
// retried forever; later outages are survived. ctx bounds the connect.
func Dial(ctx context.Context, url string, log *slog.Logger, opts ...Option) (*Broker, error) {
	if log == nil {
		log = slog.Default()
	}
	uri, err := amqp.ParseURI(url)
	if err != nil {
		// ParseURI's errors do not echo the URL, which holds a password.
		return nil, fmt.Errorf("rabbitmq: parse url: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	b := &Broker{
		url:      url,
		exchange: events.Exchange,
		drain:    DefaultDrainTimeout,
		host:     fmt.Sprintf("%s:%d%s", uri.Host, uri.Port, uri.Vhost),
		log:      log.With("broker", fmt.Sprintf("%s:%d", uri.Host, uri.Port)),
		life:     life,
		stop:     stop,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		pub:      publisher{sem: make(chan struct{}, 1)},
	}
	for _, o := range opts {
		o(b)
	}
	conn, err := b.connect(ctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("rabbitmq: connect to %s: %w", b.host, err)
	}
	go b.supervise(conn, b.adopt(conn))
	return b, nil
}

// Close stops reconnecting, closes the connection (consumers return
// ErrClosed, after their in-flight handlers) and waits for the supervisor.
// It is idempotent.
func (b *Broker) Close() error {
	b.stop()
	<-b.done
	return b.closeErr
}

// Ping reports whether the broker is connected right now, for /readyz.
// It does not do a round trip: heartbeats (10s) already close a connection
// whose peer went silent, and Ping must stay cheap.
func (b *Broker) Ping() error {
	if b.life.Err() != nil {
		return ErrClosed
	}
	if conn, _ := b.current(); conn == nil || conn.IsClosed() {
		return ErrNotConnected
	}
	return nil
}

// current returns the live connection (nil while reconnecting) and a
// channel closed at the next change of it.
func (b *Broker) current() (*amqp.Connection, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conn, b.changed
}

func (b *Broker) setConn(conn *amqp.Connection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn, b.blocked = conn, ""
	close(b.changed)
	b.changed = make(chan struct{})
}

// adopt makes a fresh connection the current one and returns the channel
// that reports its loss. The listeners are registered first, so a close or
// block cannot slip in unseen.
func (b *Broker) adopt(conn *amqp.Connection) (lost chan *amqp.Error) {
	lost = conn.NotifyClose(make(chan *amqp.Error, 1))
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	b.setConn(conn)
	go b.watchBlocked(conn, blocks)
	return lost
}

// watchBlocked tracks connection.blocked/unblocked until conn closes.
// While RabbitMQ blocks a connection it stops reading from its socket, and
// a publish would hang in a socket write that no ctx can interrupt; knowing
// about the block lets Publish fail at once instead.
func (b *Broker) watchBlocked(conn *amqp.Connection, blocks <-chan amqp.Blocking) {
	for bl := range blocks {
		reason := ""
		if bl.Active {
			reason = bl.Reason
			if reason == "" {
				reason = "resource alarm"
			}
			b.log.Warn("rabbitmq: broker blocks publishing", "reason", reason)
		} else {
			b.log.Info("rabbitmq: broker unblocked publishing")
		}
		b.mu.Lock()
		if b.conn == conn {
			b.blocked = reason
		}
		b.mu.Unlock()
	}
}

// connect dials once and declares the exchange, so Publish works before
// any consumer has declared its queues.
func (b *Broker) connect(ctx context.Context) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("usersvc")
	conn, err := amqp.DialConfig(b.url, amqp.Config{
		Heartbeat:  heartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Deadline for the AMQP handshake; amqp091 clears it after.
			deadline := time.Now().Add(dialTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = declareExchange(ch, b.exchange)
		_ = ch.Close()
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("declare exchange %s: %w", b.exchange, err)
	}
	return conn, nil
}

// supervise waits for the connection to drop and dials a new one, until
// Close. It logs the loss and the recovery once each, not every attempt:
// an outage of minutes must not flood the log.
func (b *Broker) supervise(conn *amqp.Connection, lost chan *amqp.Error) {
	defer close(b.done)
	for {
		var cause *amqp.Error
		select {
		case cause = <-lost:
		case <-b.life.Done():
		}
		if b.life.Err() != nil {
			b.setConn(nil)
			if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
				b.closeErr = fmt.Errorf("rabbitmq: close connection: %w", err)
			}
			return
		}
		b.setConn(nil)
		since := time.Now()
		var reason any = "closed"
		if cause != nil {
			reason = cause
		}
		b.log.Warn("rabbitmq: connection lost; reconnecting in the background", "error", reason)

		var attempts int
		conn, attempts = b.redial()
		if conn == nil {
			return // Close during the outage; nothing left to close
		}
		lost = b.adopt(conn)
		b.log.Info("rabbitmq: connection recovered",
			"downtime", time.Since(since).Round(time.Millisecond), "attempts", attempts)
	}
}

// redial dials with exponential backoff until it succeeds or the Broker is
// closed (nil).
func (b *Broker) redial() (*amqp.Connection, int) {
	delay := minBackoff
	for attempt := 1; ; attempt++ {
		// ±20% jitter, so that many instances do not reconnect in step.
		wait := delay - delay/5 + rand.N(delay*2/5+1)
		t := time.NewTimer(wait)
		select {
		case <-b.life.Done():
			t.Stop()
			return nil, attempt - 1
		case <-t.C:
		}
		conn, err := b.connect(b.life)
		if err == nil {
			return conn, attempt
		}
		b.log.Debug("rabbitmq: reconnect failed", "attempt", attempt, "error", err)
		delay = min(delay*2, maxBackoff)
	}
}

// backoff sleeps for d or until ctx or the Broker ends; false means stop.
func (b *Broker) backoff(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-b.life.Done():
		return false
	case <-t.C:
		return true
	}
}
