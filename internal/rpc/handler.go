// Package rpc is the go-micro edge of the user service: the gRPC handler that
// adapts the protobuf contract to the domain, the server and client
// construction, and the registry. It is the only package that imports
// go-micro, so the framework stays replaceable.
package rpc

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// Handler implements userv1.UserHandler on the domain service.
type Handler struct {
	svc    *flows.Service
	jwks   func() ([]byte, error)
	limits ClientLimits
}

// NewHandler adapts svc; jwks returns the public keys document, and limits
// are the per-client budgets of callers that come straight to the port.
func NewHandler(svc *flows.Service, jwks func() ([]byte, error), limits ClientLimits) *Handler {
	return &Handler{svc: svc, jwks: jwks, limits: limits}
}

var _ userv1.UserHandler = (*Handler)(nil)

// caller establishes who is calling from the bearer token in the call's
// metadata, verified by the domain (signature, kid, iss, aud, exp, session
// version, status, logout denylist; for a service account, not revoked).
// No token is the anonymous caller; a malformed or invalid one is refused.
// The user behind a user's token comes back too, so Get of one's own user
// needs no second read.
func (h *Handler) caller(ctx context.Context) (user.Actor, *user.User, error) {
	header := metadataValue(ctx, authorizationKey)
	if header == "" {
		return user.Actor{}, nil, nil
	}
	tok, ok := reqmeta.BearerToken(header)
	if !ok {
		return user.Actor{}, nil, user.ErrInvalidToken
	}
	return h.svc.Authenticate(ctx, tok)
}

// identified is caller for the operations that need a credential: an
// anonymous call is unauthenticated rather than merely forbidden, so a
// client knows to sign in.
func (h *Handler) identified(ctx context.Context) (user.Actor, *user.User, error) {
	actor, u, err := h.caller(ctx)
	if err == nil && actor.Anonymous() {
		err = user.ErrNoCredential
	}
	return actor, u, err
}

func (h *Handler) Get(ctx context.Context, in *userv1.GetRequest, out *userv1.GetResponse) error {
	actor, self, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	u := self
	if self == nil || self.ID != in.GetId() {
		if u, err = h.svc.Get(ctx, actor, in.GetId()); err != nil {
			return toMicro(err)
		}
	}
	out.User = UserToProto(u)
	return nil
}

func (h *Handler) Pagination(ctx context.Context, in *userv1.PaginationRequest, out *userv1.PaginationResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	p, err := h.svc.List(ctx, actor, user.ListInput{
		Page: int(in.GetPage()), PageSize: int(in.GetPageSize()), Cursor: in.GetCursor(), Query: in.GetQuery(),
		Role: RoleFromProto(in.GetRole()), Status: StatusFromProto(in.GetStatus()),
	})
	if err != nil {
		return toMicro(err)
	}
	out.Users = make([]*userv1.UserInfo, len(p.Users))
	for i, u := range p.Users {
		out.Users[i] = UserToProto(u)
	}
	out.Total, out.Page, out.PageSize, out.NextCursor = p.Total, int32(p.Page), int32(p.PageSize), p.NextCursor
	return nil
}

func (h *Handler) Create(ctx context.Context, in *userv1.CreateRequest, out *userv1.CreateResponse) error {
	actor, _, err := h.caller(ctx)
	if err == nil && actor.SignsUp() { // signed in or not, as at the API's POST /user
		err = h.limits.allow(ctx, ratelimit.SignUp)
	}
	if err != nil {
		return toMicro(err)
	}
	u, err := h.svc.Create(ctx, actor, createFromProto(in))
	if err != nil {
		return toMicro(err)
	}
	if u == nil { // enumeration-safe sign-up: accepted, no user to show
		out.Accepted = true
		return nil
	}
	out.User = UserToProto(u)
	return nil
}

func (h *Handler) Update(ctx context.Context, in *userv1.UpdateRequest, out *userv1.UpdateResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	u, err := h.svc.Update(ctx, actor, in.GetId(), updateFromProto(in))
	if err != nil {
		return toMicro(err)
	}
	out.User = UserToProto(u)
	return nil
}

func (h *Handler) Delete(ctx context.Context, in *userv1.DeleteRequest, _ *userv1.DeleteResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.Delete(ctx, actor, in.GetId()))
}

// Auth signs in a user with email and password, or a service account with
// its client id and secret (the client credentials grant).
func (h *Handler) Auth(ctx context.Context, in *userv1.AuthRequest, out *userv1.AuthResponse) error {
	if err := h.limits.allow(ctx, ratelimit.SignIn); err != nil {
		return toMicro(err)
	}
	if in.GetClientId() != "" || in.GetClientSecret() != "" {
		if in.GetEmail() != "" || in.GetPassword() != "" {
			return toMicro(user.Invalid(map[string]string{"email": "is not allowed with client credentials"}))
		}
		cs, err := h.svc.AuthClient(ctx, in.GetClientId(), in.GetClientSecret())
		if err != nil {
			return toMicro(err)
		}
		out.AccessToken, out.TokenType, out.Scope = cs.AccessToken, "Bearer", cs.Scope
		out.ExpiresIn = int64(cs.AccessExpiresAt.Sub(timeNow()).Round(1e9).Seconds())
		return nil
	}
	if in.GetMfaTicket() != "" {
		if in.GetEmail() != "" || in.GetPassword() != "" {
			return toMicro(user.Invalid(map[string]string{"email": "is not allowed with an mfa ticket"}))
		}
		s, err := h.svc.CompleteMFA(ctx, in.GetMfaTicket(), in.GetFactor(), in.GetCode())
		if err != nil {
			return toMicro(err)
		}
		sessionToProto(s, out)
		return nil
	}
	s, err := h.svc.Auth(ctx, in.GetEmail(), in.GetPassword())
	if err != nil {
		return toMicro(err)
	}
	sessionToProto(s, out)
	return nil
}

func (h *Handler) Refresh(ctx context.Context, in *userv1.RefreshRequest, out *userv1.AuthResponse) error {
	s, err := h.svc.Refresh(ctx, in.GetRefreshToken())
	if err != nil {
		return toMicro(err)
	}
	sessionToProto(s, out)
	return nil
}

func (h *Handler) Revoke(ctx context.Context, in *userv1.RevokeRequest, _ *userv1.RevokeResponse) error {
	return toMicro(h.svc.Revoke(ctx, in.GetRefreshToken(), in.GetAccessToken()))
}

func (h *Handler) Validate(ctx context.Context, in *userv1.ValidateRequest, out *userv1.ValidateResponse) error {
	v, err := h.svc.Validate(ctx, in.GetAccessToken())
	if err != nil {
		return toMicro(err)
	}
	if v.Account != nil {
		out.ClientId = v.Account.ID
		for _, sc := range v.Scopes {
			out.Scopes = append(out.Scopes, string(sc))
		}
	} else {
		out.User = UserToProto(v.User)
	}
	out.TokenId = v.Claims.ID
	out.ExpiresAt = timestamppb.New(v.Claims.ExpiresAt)
	return nil
}

func (h *Handler) CreatePasswordReset(ctx context.Context, in *userv1.CreatePasswordResetRequest, _ *userv1.CreatePasswordResetResponse) error {
	if err := h.limits.allow(ctx, ratelimit.ResetRequest); err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.CreatePasswordReset(ctx, in.GetEmail()))
}

func (h *Handler) ResetPassword(ctx context.Context, in *userv1.ResetPasswordRequest, _ *userv1.ResetPasswordResponse) error {
	return toMicro(h.svc.ResetPassword(ctx, in.GetToken(), in.GetPassword()))
}

// VerifyEmail and ResendVerification are anonymous like the reset pair:
// the mailed token, or nothing, is the credential.
func (h *Handler) VerifyEmail(ctx context.Context, in *userv1.VerifyEmailRequest, _ *userv1.VerifyEmailResponse) error {
	return toMicro(h.svc.VerifyEmail(ctx, in.GetToken()))
}

func (h *Handler) ResendVerification(ctx context.Context, in *userv1.ResendVerificationRequest, _ *userv1.ResendVerificationResponse) error {
	if err := h.limits.allow(ctx, ratelimit.VerificationResend); err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.ResendVerification(ctx, in.GetEmail()))
}

func (h *Handler) Keys(_ context.Context, _ *userv1.KeysRequest, out *userv1.KeysResponse) error {
	b, err := h.jwks()
	if err != nil {
		return toMicro(user.Internal("jwks", err))
	}
	out.Jwks = string(b)
	return nil
}

// ListSessions lists a user's live sessions (who may: user.OpSessions).
func (h *Handler) ListSessions(ctx context.Context, in *userv1.ListSessionsRequest, out *userv1.ListSessionsResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	list, err := h.svc.Sessions(ctx, actor, in.GetId())
	if err != nil {
		return toMicro(err)
	}
	out.Sessions = make([]*userv1.SessionInfo, len(list))
	for i, s := range list {
		out.Sessions[i] = &userv1.SessionInfo{Id: s.ID, StartedAt: timestamppb.New(s.StartedAt),
			LastUsedAt: timestamppb.New(s.LastUsedAt), ExpiresAt: timestamppb.New(s.ExpiresAt)}
	}
	return nil
}

// EndSessions signs a user out everywhere (who may: user.OpSessions).
func (h *Handler) EndSessions(ctx context.Context, in *userv1.EndSessionsRequest, _ *userv1.EndSessionsResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.EndSessions(ctx, actor, in.GetId()))
}

// Revocations is the catch-up of other services' verifiers (who may:
// user.OpRevocations): each revocation travels as the JSON published on
// RabbitMQ.
func (h *Handler) Revocations(ctx context.Context, in *userv1.RevocationsRequest, out *userv1.RevocationsResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	var since time.Time
	if in.GetSince() != nil {
		since = in.GetSince().AsTime()
	}
	revs, err := h.svc.Revocations(ctx, actor, since, in.GetAfter(), int(in.GetLimit()))
	if err != nil {
		return toMicro(err)
	}
	out.Revocations = make([]string, len(revs))
	for i, r := range revs {
		b, err := json.Marshal(r)
		if err != nil {
			return toMicro(user.Internal("encode revocation", err))
		}
		out.Revocations[i] = string(b)
	}
	if len(revs) > 0 {
		out.NextAfter = revs[len(revs)-1].ID
	}
	return nil
}
