package telemetry

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request ID (X-Request-ID), which
// the log handler writes as transaction.id on every line logged with ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request ID ctx carries, "" if none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
