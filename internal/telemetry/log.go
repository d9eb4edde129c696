package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// ECS field names this package writes on every line it can.
const (
	FieldTraceID     = "trace.id"
	FieldSpanID      = "span.id"
	FieldRequestID   = "transaction.id" // the request ID (X-Request-ID)
	FieldServiceName = "service.name"
	FieldErrorMsg    = "error.message"
)

// NewJSONLogger writes one JSON object per line with Elastic Common Schema
// field names: @timestamp, log.level, message, service.name, and — when the
// context passed to the log call has them — trace.id, span.id and
// transaction.id (the request ID). An "error" attribute becomes
// error.message. Shippers (Filebeat, the OTel Collector's filelog receiver)
// then need no parsing rules, and an index template maps every field.
func NewJSONLogger(w io.Writer, level slog.Leveler, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: ecsNames})
	l := slog.New(ContextHandler{Handler: h})
	if service != "" {
		l = l.With(FieldServiceName, service)
	}
	return l
}

func ecsNames(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		a.Key = "@timestamp"
	case slog.LevelKey:
		a.Key = "log.level"
		a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
	case slog.MessageKey:
		a.Key = "message"
	case "error":
		a.Key = FieldErrorMsg
	}
	return a
}

// ContextHandler adds the trace and span IDs of the context's span and the
// context's request ID to every record it handles.
type ContextHandler struct{ slog.Handler }

// Handle adds the IDs, then passes r on.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String(FieldTraceID, sc.TraceID().String()), slog.String(FieldSpanID, sc.SpanID().String()))
		}
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String(FieldRequestID, id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(as)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}
