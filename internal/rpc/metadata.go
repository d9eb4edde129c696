package rpc

import (
	"context"
	"strings"

	"go-micro.dev/v6/metadata"

	"github.com/usersvc/usersvc/internal/reqmeta"
)

// Metadata keys of a call. gRPC lower-cases keys on the wire, so readers
// look them up case-insensitively.
const (
	// requestIDKey carries the HTTP request ID to the service.
	requestIDKey = "X-Request-Id"
	// authorizationKey carries the caller's credential, "Bearer <token>",
	// as gRPC's own convention (and every gRPC client) has it.
	authorizationKey = "Authorization"
)

// withCall moves the request ID and bearer token of reqmeta into the
// outgoing call's metadata.
func withCall(ctx context.Context) context.Context {
	call := reqmeta.From(ctx)
	md := metadata.Metadata{}
	if call.RequestID != "" {
		md[requestIDKey] = call.RequestID
	}
	if call.Bearer != "" {
		md[authorizationKey] = "Bearer " + call.Bearer
	}
	if len(md) == 0 {
		return ctx
	}
	return metadata.MergeContext(ctx, md, true)
}

// RequestID returns the request ID of an incoming call, "" if none.
func RequestID(ctx context.Context) string { return metadataValue(ctx, requestIDKey) }

func metadataValue(ctx context.Context, key string) string {
	md, ok := metadata.FromContext(ctx)
	if !ok {
		return ""
	}
	for k, v := range md {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
