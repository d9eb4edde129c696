// Package authmicro is the go-micro side of package auth: a server handler
// wrapper that verifies the caller's token from the call's "authorization"
// metadata and puts the principal in the handler's context, and the
// mapping of auth errors to go-micro errors.
package authmicro

import (
	"context"
	"strings"

	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/metadata"
	"go-micro.dev/v6/server"

	"github.com/usersvc/usersvc/sdk/auth"
)

// AuthorizationKey is the metadata key of the bearer credential, as gRPC
// has it ("Authorization: Bearer <token>"; gRPC lower-cases it).
const AuthorizationKey = "Authorization"

// Options configure HandlerWrapper.
type Options struct {
	// ID is the Id of the go-micro errors returned, usually the service
	// name; default "auth".
	ID string
	// Public lists endpoints ("Service.Method") callable without a token;
	// a token sent to one is still verified.
	Public []string
	// Require is demanded of every caller of every non-public endpoint;
	// Endpoints adds demands per endpoint.
	Require   []auth.Requirement
	Endpoints map[string][]auth.Requirement
}

// HandlerWrapper verifies every call's token. A refused call gets a
// go-micro error with code 401, 403 or 503 (see Error); the handler finds
// the principal with auth.FromContext.
func HandlerWrapper(v *auth.Verifier, o Options) server.HandlerWrapper {
	if o.ID == "" {
		o.ID = "auth"
	}
	public := map[string]bool{}
	for _, e := range o.Public {
		public[e] = true
	}
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req server.Request, rsp any) error {
			authz := Authorization(ctx)
			if authz == "" && public[req.Endpoint()] {
				return next(ctx, req, rsp)
			}
			reqs := append(append([]auth.Requirement(nil), o.Require...), o.Endpoints[req.Endpoint()]...)
			if public[req.Endpoint()] {
				reqs = nil
			}
			p, err := v.Authorize(ctx, authz, reqs...)
			if err != nil {
				return Error(o.ID, err)
			}
			return next(auth.WithPrincipal(ctx, p), req, rsp)
		}
	}
}

// Authorization returns the incoming call's authorization metadata
// (looked up case-insensitively), "" if none.
func Authorization(ctx context.Context) string {
	md, ok := metadata.FromContext(ctx)
	if !ok {
		return ""
	}
	for k, v := range md {
		if strings.EqualFold(k, AuthorizationKey) {
			return v
		}
	}
	return ""
}

// WithBearer returns a context whose outgoing calls carry token as their
// credential, e.g. to forward the caller's token to another service.
func WithBearer(ctx context.Context, token string) context.Context {
	return metadata.MergeContext(ctx, metadata.Metadata{AuthorizationKey: "Bearer " + token}, true)
}

// Error turns an error of package auth into a go-micro error: code
// auth.Status(err), detail auth.Code(err) (never the cause).
func Error(id string, err error) error {
	return merrors.New(id, auth.Code(err), int32(auth.Status(err)))
}
