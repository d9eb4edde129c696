package rabbitmq

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/events"
)

// Header names; see the package documentation.
const (
	headerAttempt    = "x-attempt"
	headerRoutingKey = "x-routing-key"
	headerError      = "x-error"
)

// RetryQueue names the queue where failed deliveries of queue wait out
// their backoff.
func RetryQueue(queue string) string { return queue + ".retry" }

// DeadLetterQueue names the queue where queue's given-up messages are
// parked for an operator.
func DeadLetterQueue(queue string) string { return queue + ".dlq" }

func declareExchange(ch *amqp.Channel, exchange string) error {
	return ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil)
}

// declareSubscription declares the exchange, the subscription's three
// queues and the bindings. Every declaration is idempotent, and the
// arguments must not change between versions: RabbitMQ refuses (406
// PRECONDITION_FAILED) to redeclare a queue with different arguments.
func declareSubscription(ch *amqp.Channel, exchange string, sub events.Subscription) error {
	if err := declareExchange(ch, exchange); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	queues := []struct {
		name string
		args amqp.Table
	}{
		{sub.Queue, nil},
		{RetryQueue(sub.Queue), amqp.Table{
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": sub.Queue,
		}},
		{DeadLetterQueue(sub.Queue), nil},
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.name, err)
		}
	}
	for _, key := range sub.RoutingKeys {
		if err := ch.QueueBind(sub.Queue, key, exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s with key %q: %w", sub.Queue, exchange, key, err)
		}
	}
	return nil
}
