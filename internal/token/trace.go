package token

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

var tracer = otel.Tracer("github.com/usersvc/usersvc/internal/token")

// Issue signs a new access token for subject (see issue), inside a "token
// issue" span that names the signing key's kid, never the token or its
// subject.
func (m *Manager) Issue(ctx context.Context, subject, role string, sessionVersion int64) (string, Claims, error) {
	_, span := tracer.Start(ctx, "token issue")
	defer span.End()
	tok, claims, err := m.issue(subject, role, sessionVersion)
	if err != nil {
		span.SetStatus(codes.Error, "issue failed")
		return tok, claims, err
	}
	span.SetAttributes(attribute.String("usersvc.token.kid", m.keys.signing.ID))
	return tok, claims, nil
}
