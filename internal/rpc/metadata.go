package rpc

import (
	"context"
	"strings"

	"go-micro.dev/v6/metadata"
)

// requestIDKey carries the HTTP request ID to the service. gRPC lower-cases
// metadata keys on the wire, so the reader looks it up case-insensitively.
const requestIDKey = "X-Request-Id"

// WithRequestID attaches a request ID to the outgoing call's metadata.
func WithRequestID(ctx context.Context, id string) context.Context {
	return metadata.MergeContext(ctx, metadata.Metadata{requestIDKey: id}, true)
}

// RequestID returns the request ID of an incoming call, "" if none.
func RequestID(ctx context.Context) string {
	md, ok := metadata.FromContext(ctx)
	if !ok {
		return ""
	}
	for k, v := range md {
		if strings.EqualFold(k, requestIDKey) {
			return v
		}
	}
	return ""
}
