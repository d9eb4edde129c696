// Package reqmeta holds what travels with one request across the process
// boundaries without being part of any request body: the request ID that ties
// the logs of gateway, API and service together, and the caller's bearer
// credential, which the API forwards for the user service to verify. The
// transports (the gateway's proxy, the API's HTTP edge, the RPC client)
// move these values between the wire and a context; nothing else reads them.
package reqmeta

import (
	"context"
	"crypto/rand"
	"strings"
)

// RequestIDHeader is read from a request, echoed on its response and
// forwarded upstream.
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLength bounds a client-chosen ID before it reaches logs.
const MaxRequestIDLength = 128

// SaneRequestID accepts 1..128 printable ASCII characters, so a client's ID
// can neither forge log lines nor bloat them.
func SaneRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// RequestID returns id when it is sane and a fresh random ID otherwise.
func RequestID(id string) string {
	if SaneRequestID(id) {
		return id
	}
	return rand.Text()
}

// Call is the metadata of one outgoing call to the user service.
type Call struct {
	RequestID string
	// Bearer is the caller's access token, "" for an anonymous call.
	Bearer string
}

type callKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// From returns the Call ctx carries (zero when none).
func From(ctx context.Context) Call {
	c, _ := ctx.Value(callKey{}).(Call)
	return c
}

// BearerToken extracts the token of an RFC 6750 "Bearer" credential; the
// scheme name is case-insensitive. The token must be visible ASCII (RFC 6750
// token68 is a subset), which also keeps bytes the RPC metadata cannot carry
// from reaching it.
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return "", false
		}
	}
	return tok, true
}
