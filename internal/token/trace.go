package token

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/usersvc/usersvc/internal/token")

// startIssue opens the "token issue" span, one of the few made by hand: it
// names the signing key's kid, never the token or its subject.
func startIssue(ctx context.Context, kid string) (context.Context, trace.Span) {
	return tracer.Start(ctx, "token issue", trace.WithAttributes(attribute.String("usersvc.token.kid", kid)))
}

func endIssue(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "issue failed")
	}
	span.End()
}
