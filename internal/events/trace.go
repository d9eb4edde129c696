package events

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc/internal/telemetry"
)

var tracer = otel.Tracer("github.com/usersvc/usersvc/internal/events")

// traceContext carries the W3C trace context in a message's headers.
var traceContext = propagation.TraceContext{}

// remoteParent is the span context a W3C traceparent names (invalid when
// tp is empty or malformed).
func remoteParent(tp string) trace.SpanContext {
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// startPublish opens the producer span of one message: a child of the span
// that wrote the event to the outbox (so it belongs to the request's
// trace), linked to the relay batch that carried it, and writes its context
// into the message's headers for the consumer.
func startPublish(batch context.Context, m *Message, parent, exchange string) trace.Span {
	ctx := context.Background()
	if sc := remoteParent(parent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := tracer.Start(ctx, exchange+" publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(trace.LinkFromContext(batch)),
		trace.WithAttributes(semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(exchange), semconv.MessagingMessageID(m.ID),
			attribute.String("messaging.rabbitmq.destination.routing_key", m.RoutingKey)))
	if m.Headers == nil {
		m.Headers = map[string]string{}
	}
	traceContext.Inject(ctx, propagation.MapCarrier(m.Headers))
	return span
}

// endSpans ends the producer spans of a batch with its outcome.
func endSpans(spans []trace.Span, err error) {
	for _, s := range spans {
		if err != nil {
			s.SetStatus(codes.Error, "publish failed")
		}
		s.End()
	}
}

// Traced wraps a subscription's handler: each delivery is handled inside a
// consumer span whose parent is the producer span named in the message's
// headers: the worker's work joins the trace of the request that caused it.
func Traced(sub Subscription, h Handler) Handler {
	for _, o := range []string{"ok", "retry", "dead_lettered"} {
		telemetry.ConsumerDeliveries.WithLabelValues(sub.Queue, o)
	}
	return func(ctx context.Context, m Message) error {
		if m.Headers != nil {
			ctx = traceContext.Extract(ctx, propagation.MapCarrier(m.Headers))
		}
		ctx, span := tracer.Start(ctx, sub.Queue+" process",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationTypeProcess,
				semconv.MessagingDestinationName(sub.Queue), semconv.MessagingMessageID(m.ID),
				attribute.String("messaging.rabbitmq.destination.routing_key", m.RoutingKey)))
		defer span.End()
		err := h(ctx, m)
		if err != nil {
			span.SetStatus(codes.Error, "handler failed")
		}
		return err
	}
}

// CountDelivery records a handled delivery's outcome (ok, retry,
// dead_lettered) in usersvc_events_consumed_total.
func CountDelivery(queue, outcome string) {
	telemetry.ConsumerDeliveries.WithLabelValues(queue, outcome).Inc()
}
