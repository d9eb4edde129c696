// Package auth lets another service of a go-micro system trust the user
// service's access tokens without calling it on every request.
//
// A Verifier checks an access token locally: the Ed25519 ("EdDSA")
// signature against the user service's JWKS (fetched once, cached, fetched
// again when a token names a key it does not know, at most once per
// RefetchFloor so forged key IDs cannot make it hammer the service), the
// issuer, the audience, and exp/nbf/iat within a small leeway. It returns a
// typed Principal: a user (id, role, whether the email is verified, the
// session) or a service account (client id and scopes).
//
// A signature only proves what was true when the token was issued. The
// user service publishes a Revocation whenever a token may no longer be
// honoured (logout, a session ended, a password change, a disabled or
// deleted user, a role change, a revoked service account); give the
// Verifier a RevocationChecker (package sdk/revocations keeps one current
// from RabbitMQ) and it refuses those tokens too.
//
// Middleware for net/http is here; gin and go-micro have their own
// packages (authgin, authmicro) so that importing this one pulls in neither.
// It depends on the standard library only.
package auth
