package password

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/usersvc/usersvc/internal/password")

// Hash returns a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt b64 raw std>$<hash b64 raw std>
//
// The format is the one used by the argon2 reference implementation and
// libraries in other languages. Hashes stay portable, and each one records
// the parameters needed to verify it. The computation is a span of its own
// ("password hash", carrying only the argon2 parameters): it is the
// costliest step of a request, and the one to watch when tuning them.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	_, span := tracer.Start(ctx, "password hash", trace.WithAttributes(h.attrs()...))
	defer span.End()
	enc, err := h.hash(password)
	if err != nil {
		span.SetStatus(codes.Error, "hash failed")
	}
	return enc, err
}

// Verify recomputes the hash of password with the salt and parameters stored in
// encoded and compares the keys in constant time (crypto/subtle), so response
// timing does not show how many bytes matched.
//
// needsRehash is true only when ok is true and the stored m, t, p or key
// length differ from the hasher's. The caller can then store Hash(password)
// and move users to new parameters as they log in. It is never true for a wrong
// password: a caller that rehashed on that signal would overwrite the real
// password with the attacker's guess.
//
// A wrong password returns (false, false, nil). A hash that cannot be parsed
// or whose parameters are out of bounds returns an error wrapping
// ErrMalformedHash. Verify does not panic, and it returns before doing any
// costly work on such hashes.
//
// To avoid revealing which accounts exist, callers should also call Verify
// against a dummy hash when the user does not exist, so both paths take
// similar time. Like Hash, it is a span of its own ("password verify").
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	_, span := tracer.Start(ctx, "password verify", trace.WithAttributes(h.attrs()...))
	defer span.End()
	ok, needsRehash, err = h.verify(password, encoded)
	if err != nil {
		span.SetStatus(codes.Error, "verify failed")
	}
	return ok, needsRehash, err
}

func (h *Hasher) attrs() []attribute.KeyValue {
	return []attribute.KeyValue{attribute.Int("usersvc.argon2.memory_kib", int(h.params.Memory)),
		attribute.Int("usersvc.argon2.iterations", int(h.params.Iterations))}
}
