package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/events"
)

const (
	// republishTimeout bounds moving a failed message to the retry or
	// dead-letter queue; it is not tied to Consume's ctx, so that a
	// shutdown does not abandon a move half-way.
	republishTimeout = 10 * time.Second
	// requeuePause delays the requeue of a message that could not be
	// moved: requeued at once, it would be redelivered at once, and a
	// lasting failure would spin.
	requeuePause = time.Second
	// maxErrorLen caps the x-error header: a header frame must fit in one
	// AMQP frame, and a handler's error can be arbitrarily long.
	maxErrorLen = 1024
)

// Consume declares the subscription's topology (see the package doc),
// consumes its queue with manual acks and runs h on up to sub.Concurrency
// deliveries at once, until ctx ends; then it stops taking deliveries,
// waits for the handlers in flight to finish and ack, and returns nil.
//
// A handler's nil acks the delivery; an error sends it to the retry queue
// (or, if events.Permanent or on attempt MaxAttempts, to the dead-letter
// queue), see the package doc. Across connection losses Consume waits for
// the Broker to reconnect and consumes again. It returns an error only
// when the broker refuses the topology (403 access refused or 406
// inequivalent arguments: a configuration error that retrying cannot fix)
// and ErrClosed when the Broker is closed.
func (b *Broker) Consume(ctx context.Context, sub events.Subscription, h events.Handler) error {
	sub = sub.Defaults()
	if sub.Queue == "" {
		return errors.New("rabbitmq: consume: subscription has no queue name")
	}
	if h == nil {
		return fmt.Errorf("rabbitmq: consume %s: nil handler", sub.Queue)
	}
	c := &consumer{
		b:   b,
		sub: sub,
		h:   events.Traced(sub, h),
		log: b.log.With("queue", sub.Queue),
		sem: make(chan struct{}, sub.Concurrency),
	}
	// Handlers run on a context the stop does not end at once: one in
	// flight finishes and acks instead of being requeued and sending its
	// mail a second time from another worker. Only a handler still running
	// b.drain after the stop is cancelled (and its message requeued).
	hctx, release := events.HandlerContext(ctx, b.drain)
	defer release()
	defer c.wg.Wait() // before release: deferred calls run last first

	delay := minBackoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		if b.life.Err() != nil {
			return ErrClosed
		}
		conn, changed := b.current()
		if conn != nil && !conn.IsClosed() {
			started, err := c.session(ctx, hctx, conn)
			if started {
				delay = minBackoff
			}
			switch {
			case ctx.Err() != nil:
				return nil
			case b.life.Err() != nil:
				return ErrClosed
			case err != nil && isFatal(err):
				return fmt.Errorf("rabbitmq: consume %s: %w", sub.Queue, err)
			case err != nil && !conn.IsClosed():
				// The channel failed on a live connection (consumer
				// cancelled because the queue was deleted, ...): start
				// over, which redeclares the topology.
				c.log.Warn("rabbitmq: consumer stopped; restarting it", "error", err, "in", delay)
				b.backoff(ctx, delay)
				delay = min(delay*2, maxBackoff)
				continue
			}
			// The connection is gone; the supervisor logs that and
			// redials, and changed tells when it has.
		}
		select {
		case <-ctx.Done():
		case <-b.life.Done():
		case <-changed:
		}
	}
}

// consumer is one running Consume call.
type consumer struct {
	b   *Broker
	sub events.Subscription
	h   events.Handler
	log *slog.Logger
	// sem bounds the handlers in flight across sessions: after a
	// reconnect, handlers of the dead channel may still be running.
	sem chan struct{}
	wg  sync.WaitGroup // handlers in flight
}

// fatalError marks a topology error that retrying cannot fix.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func isFatal(err error) bool {
	var f fatalError
	return errors.As(err, &f)
}

// setupError marks err fatal when the broker refused the request itself
// rather than the connection failing.
func setupError(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.PreconditionFailed) {
		return fatalError{err}
	}
	return err
}

// session consumes on a new channel of conn until ctx ends (nil) or the
// channel stops delivering (an error), running handlers on hctx. started
// reports whether it got as far as consuming.
func (c *consumer) session(ctx, hctx context.Context, conn *amqp.Connection) (started bool, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))

	if err := declareSubscription(ch, c.b.exchange, c.sub); err != nil {
		return false, setupError(err)
	}
	// Prefetch no more than we handle at once: a message prefetched by a
	// busy consumer waits here instead of going to another instance.
	if err := ch.Qos(c.sub.Concurrency, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch to %d: %w", c.sub.Concurrency, err)
	}
	tag := consumerTag(c.sub.Queue)
	deliveries, err := ch.Consume(c.sub.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return false, setupError(fmt.Errorf("consume queue %s: %w", c.sub.Queue, err))
	}

	for {
		select {
		case <-ctx.Done():
			// Stop the flow, let the handlers in flight ack, then close
			// the channel (deferred), which requeues what was prefetched
			// but not handled.
			_ = ch.Cancel(tag, false)
			c.wg.Wait()
			return true, nil
		case d, ok := <-deliveries:
			if !ok {
				select {
				case e, ok := <-closed:
					if ok && e != nil {
						return true, fmt.Errorf("channel closed: %w", e)
					}
				default:
				}
				return true, errors.New("the broker cancelled the consumer")
			}
			if ctx.Err() != nil {
				continue // not started: requeued when the channel closes
			}
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			c.wg.Add(1)
			go func() {
				defer func() {
					<-c.sem
					c.wg.Done()
				}()
				c.handle(hctx, d)
			}()
		}
	}
}

func consumerTag(queue string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "usersvc." + queue + "." + hex.EncodeToString(b)
}

// handle runs the handler on d and settles d: ack on success; on failure
// move a copy to the retry or dead-letter queue and ack only once the
// broker has confirmed the copy.
func (c *consumer) handle(ctx context.Context, d amqp.Delivery) {
	m := events.Message{ID: d.MessageId, RoutingKey: routingKey(d), Body: d.Body, Headers: traceFields(d.Headers)}
	attempt := attemptOf(d.Headers)
	log := c.log.With("event.id", m.ID, "event.action", m.RoutingKey, "attempt", attempt)

	herr := c.call(ctx, log, m)
	if herr == nil {
		events.CountDelivery(c.sub.Queue, "ok")
		if err := d.Ack(false); err != nil {
			log.Warn("rabbitmq: ack failed; the message will be delivered again", "error", err)
		}
		return
	}
	if ctx.Err() != nil {
		// Shutting down and past the drain timeout: the failure may be
		// our own cancellation, which must not cost the message an
		// attempt.
		if err := d.Nack(false, true); err != nil {
			log.Warn("rabbitmq: requeue failed; the broker requeues the message when the channel closes", "error", err)
		}
		return
	}

	dead := events.IsPermanent(herr) || attempt >= c.sub.MaxAttempts
	var target string
	var msg amqp.Publishing
	if dead {
		target = DeadLetterQueue(c.sub.Queue)
		msg = copyFor(d, m.RoutingKey, attempt)
		msg.Headers[headerError] = truncate(herr.Error(), maxErrorLen)
	} else {
		target = RetryQueue(c.sub.Queue)
		msg = copyFor(d, m.RoutingKey, attempt+1)
		msg.Expiration = strconv.FormatInt(c.sub.Delay(attempt).Milliseconds(), 10)
	}

	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), republishTimeout)
	err := c.b.publish(pctx, []outgoing{{exchange: "", key: target, mandatory: true, msg: msg}})
	cancel()
	if err != nil {
		log.Error("rabbitmq: could not move the failed message; requeueing it",
			"to", target, "error", err, "handler_error", herr)
		c.b.backoff(ctx, requeuePause)
		if err := d.Nack(false, true); err != nil {
			log.Warn("rabbitmq: requeue failed; the broker requeues the message when the channel closes", "error", err)
		}
		return
	}
	if err := d.Ack(false); err != nil {
		// The copy is safe in target; the original comes back too, so
		// the handler will see this message once more.
		log.Warn("rabbitmq: ack after moving the message failed; it will be delivered again", "error", err)
	}
	events.CountDelivery(c.sub.Queue, map[bool]string{true: "dead_lettered", false: "retry"}[dead])
	if dead {
		log.Error("event dead-lettered", "dlq", target, "error", herr)
	} else {
		log.Warn("event handling failed, will retry", "in", c.sub.Delay(attempt), "error", herr)
	}
}

// call runs the handler, turning a panic into an error: a message that
// crashes its handler must end in the dead-letter queue, not crash-loop the
// service.
func (c *consumer) call(ctx context.Context, log *slog.Logger, m events.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("rabbitmq: handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.h(ctx, m)
}

// copyFor is d as republished through the default exchange: same body and
// properties, persistent, with the event type and the attempt number in
// headers.
func copyFor(d amqp.Delivery, key string, attempt int) amqp.Publishing {
	headers := make(amqp.Table, len(d.Headers)+3)
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[headerRoutingKey] = key
	headers[headerAttempt] = int32(attempt)
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		CorrelationId:   d.CorrelationId,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// routingKey is the event type of d: its routing key, unless d came back
// from the retry queue, whose routing key is the queue's name.
func routingKey(d amqp.Delivery) string {
	if k, ok := d.Headers[headerRoutingKey].(string); ok && k != "" {
		return k
	}
	return d.RoutingKey
}

// attemptOf reads x-attempt, accepting any integer type: other clients
// (and shovels) may re-encode the header.
func attemptOf(h amqp.Table) int {
	var n int64
	switch v := h[headerAttempt].(type) {
	case int8:
		n = int64(v)
	case int16:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case int:
		n = int64(v)
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	}
	if n < 1 {
		return 1
	}
	return int(min(n, 1<<30))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
