package rabbitmq

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/telemetry"
)

// publisher owns the one confirm-mode channel that every publish of a
// Broker goes through, one call at a time.
//
// One shared channel, serialized, rather than a channel per call, because:
// RabbitMQ wants long-lived channels (open + confirm.select + close would
// add three round trips to every call and churn channel ids); the relay,
// the main publisher, is a single goroutine sending a batch at a time, so
// serializing costs it nothing, and consumers only publish here when a
// handler fails; and with one call on the channel at a time, a basic.return
// of an unroutable mandatory republish belongs to the call in progress.
// sem is a one-slot channel rather than a sync.Mutex so that a caller
// waiting for its turn still honours its ctx.
type publisher struct {
	sem     chan struct{}
	ch      *amqp.Channel    // guarded by sem; nil until first use
	conn    *amqp.Connection // the connection ch was opened on
	returns chan amqp.Return // ch's basic.return notifications
}

// confirmTimeout bounds the wait for confirmations when the caller's ctx
// allows longer: RabbitMQ confirms in milliseconds, and a peer that went
// silent is otherwise noticed only by heartbeats after up to 30s.
const confirmTimeout = 15 * time.Second

// returnsBuffer must exceed the mandatory messages of one call (one, a
// republish); amqp091 drops a return it cannot hand over within a second.
const returnsBuffer = 16

// outgoing is one message to publish.
type outgoing struct {
	exchange, key string
	// mandatory makes an unroutable message an error instead of silently
	// dropped: used when republishing to a retry or dead-letter queue,
	// where a drop would lose the message after its original is acked.
	mandatory bool
	msg       amqp.Publishing
}

// Publish sends msgs to the user.events exchange as persistent JSON
// messages and returns nil only once the broker has confirmed every one of
// them, so the relay may then delete them from the outbox. A message no
// queue is bound for is dropped by RabbitMQ and is not an error. While the
// connection is down Publish fails at once with ErrNotConnected.
func (b *Broker) Publish(ctx context.Context, msgs []events.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now()
	out := make([]outgoing, len(msgs))
	for i, m := range msgs {
		out[i] = outgoing{exchange: b.exchange, key: m.RoutingKey, msg: amqp.Publishing{
			MessageId:    m.ID,
			Type:         m.RoutingKey,
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			Timestamp:    now,
			Body:         m.Body,
			Headers:      traceHeaders(m.Headers),
		}}
	}
	if err := b.publish(ctx, out); err != nil {
		return fmt.Errorf("rabbitmq: publish %d message(s): %w", len(msgs), err)
	}
	return nil
}

// publish sends out on the confirm channel and waits for every
// confirmation: all acked (and no mandatory message returned) is nil;
// a nack, a closed channel, ctx ending or a return is an error.
func (b *Broker) publish(ctx context.Context, out []outgoing) error {
	select {
	case b.pub.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for the publish channel: %w", ctx.Err())
	}
	defer func() { <-b.pub.sem }()
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()

	ch, err := b.confirmChannel()
	if err != nil {
		return err
	}
	// Returns left over from an earlier call that gave up waiting are not
	// about this call's messages.
	drainReturns(b.pub.returns)

	pending := make([]*amqp.DeferredConfirmation, 0, len(out))
	for _, o := range out {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, o.exchange, o.key, o.mandatory, false, o.msg)
		if err != nil {
			if ch.IsClosed() {
				b.pub.drop()
			}
			return fmt.Errorf("send message %s: %w", o.msg.MessageId, err)
		}
		pending = append(pending, dc)
	}
	for i, dc := range pending {
		id := out[i].msg.MessageId
		acked, err := dc.WaitContext(ctx)
		if err == nil {
			telemetry.BrokerConfirms.WithLabelValues(map[bool]string{true: "ack", false: "nack"}[acked]).Inc()
		}
		switch {
		case err != nil:
			return fmt.Errorf("wait for the broker to confirm message %s: %w", id, err)
		case !acked && ch.IsClosed():
			// amqp091 resolves pending confirmations as nacks on close.
			b.pub.drop()
			return fmt.Errorf("channel closed before the broker confirmed message %s", id)
		case !acked:
			return fmt.Errorf("broker nacked message %s", id)
		}
	}
	// RabbitMQ sends the basic.return of an unroutable mandatory message
	// before its basic.ack, and amqp091 queues the return before it
	// resolves the confirmation, so any return for this call is here now.
	mandatory := map[string]bool{}
	for _, o := range out {
		if o.mandatory {
			mandatory[o.msg.MessageId] = true
		}
	}
	for {
		select {
		case r, ok := <-b.pub.returns:
			if !ok {
				return nil // channel closed after every confirmation arrived
			}
			if mandatory[r.MessageId] {
				return fmt.Errorf("message %s is unroutable (exchange %q, key %q): %d %s",
					r.MessageId, r.Exchange, r.RoutingKey, r.ReplyCode, r.ReplyText)
			}
		default:
			return nil
		}
	}
}

// confirmChannel returns the publish channel, opening one on the current
// connection if there is none yet, it died, or the connection was replaced.
// It must be called holding b.pub.sem.
func (b *Broker) confirmChannel() (*amqp.Channel, error) {
	if b.life.Err() != nil {
		return nil, ErrClosed
	}
	b.mu.Lock()
	conn, blocked := b.conn, b.blocked
	b.mu.Unlock()
	if conn == nil || conn.IsClosed() {
		return nil, ErrNotConnected
	}
	if blocked != "" {
		return nil, fmt.Errorf("broker blocks publishing: %s", blocked)
	}
	p := &b.pub
	if p.ch != nil && p.conn == conn && !p.ch.IsClosed() {
		return p.ch, nil
	}
	p.drop()
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publish channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	// Redeclared with each new channel: a channel dies when the exchange
	// was deleted under us (404), and this brings it back.
	if err := declareExchange(ch, b.exchange); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("declare exchange %s: %w", b.exchange, err)
	}
	p.ch, p.conn = ch, conn
	p.returns = ch.NotifyReturn(make(chan amqp.Return, returnsBuffer))
	return ch, nil
}

// drop forgets the publish channel so the next call opens a fresh one.
func (p *publisher) drop() {
	if p.ch != nil {
		_ = p.ch.Close()
	}
	p.ch, p.conn, p.returns = nil, nil, nil
}

func drainReturns(c chan amqp.Return) {
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// traceHeaders are a message's trace-context headers as an AMQP table
// (nil when there are none).
func traceHeaders(h map[string]string) amqp.Table {
	if len(h) == 0 {
		return nil
	}
	t := make(amqp.Table, len(h))
	for k, v := range h {
		t[k] = v
	}
	return t
}

// traceFields are the trace-context headers of a delivery.
func traceFields(t amqp.Table) map[string]string {
	var out map[string]string
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := t[k].(string); ok && v != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
