package rpc

import (
	"context"
	"time"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/user"
)

// Users is the user service as its callers see it: domain types in, domain
// types and *user.Error out, with go-micro and protobuf kept inside this
// package. Each method is exactly one RPC; the request ID and the caller's
// bearer token travel from the context (reqmeta.With) in the call's
// metadata, and the service authenticates the call itself.
type Users struct {
	rpc userv1.UserService
}

// NewUsers returns a registry-resolved client of the user service (see
// NewUserClient).
func NewUsers(cfg ClientConfig) *Users {
	c, _ := NewUserClient(cfg)
	return &Users{rpc: c}
}

// Get reads one user.
func (c *Users) Get(ctx context.Context, id string) (*user.User, error) {
	resp, err := c.rpc.Get(withCall(ctx), &userv1.GetRequest{Id: id})
	if err != nil {
		return nil, FromMicro(err)
	}
	return UserFromProto(resp.GetUser()), nil
}

// List reads a page of users.
func (c *Users) List(ctx context.Context, in user.ListInput) (*user.Page, error) {
	resp, err := c.rpc.Pagination(withCall(ctx), &userv1.PaginationRequest{
		Page: int32(in.Page), PageSize: int32(in.PageSize), Cursor: in.Cursor, Query: in.Query,
		Role: RoleToProto(in.Role), Status: StatusToProto(in.Status)})
	if err != nil {
		return nil, FromMicro(err)
	}
	p := &user.Page{Users: make([]*user.User, len(resp.GetUsers())), Total: resp.GetTotal(),
		Page: int(resp.GetPage()), PageSize: int(resp.GetPageSize()), NextCursor: resp.GetNextCursor()}
	for i, u := range resp.GetUsers() {
		p.Users[i] = UserFromProto(u)
	}
	return p, nil
}

// Create registers a user. An enumeration-safe sign-up returns nil, nil:
// accepted, with no user to show (profile.Profiles.Create).
func (c *Users) Create(ctx context.Context, in user.CreateInput) (*user.User, error) {
	resp, err := c.rpc.Create(withCall(ctx), createToProto(in))
	if err != nil {
		return nil, FromMicro(err)
	}
	if resp.GetAccepted() {
		return nil, nil
	}
	return UserFromProto(resp.GetUser()), nil
}

// Update changes a user.
func (c *Users) Update(ctx context.Context, id string, in user.UpdateInput) (*user.User, error) {
	resp, err := c.rpc.Update(withCall(ctx), updateToProto(id, in))
	if err != nil {
		return nil, FromMicro(err)
	}
	return UserFromProto(resp.GetUser()), nil
}

// Delete removes a user.
func (c *Users) Delete(ctx context.Context, id string) error {
	if _, err := c.rpc.Delete(withCall(ctx), &userv1.DeleteRequest{Id: id}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// Auth signs a user in.
func (c *Users) Auth(ctx context.Context, email, password string) (*user.Session, error) {
	resp, err := c.rpc.Auth(withCall(ctx), &userv1.AuthRequest{Email: email, Password: password})
	if err != nil {
		return nil, FromMicro(err)
	}
	return sessionFromProto(resp), nil
}

// AuthClient signs a service account in (client credentials grant).
func (c *Users) AuthClient(ctx context.Context, clientID, secret string) (*user.ClientSession, error) {
	resp, err := c.rpc.Auth(withCall(ctx), &userv1.AuthRequest{ClientId: clientID, ClientSecret: secret})
	if err != nil {
		return nil, FromMicro(err)
	}
	return &user.ClientSession{AccessToken: resp.GetAccessToken(), Scope: resp.GetScope(),
		AccessExpiresAt: timeNow().Add(time.Duration(resp.GetExpiresIn()) * time.Second)}, nil
}

// Refresh rotates a refresh token.
func (c *Users) Refresh(ctx context.Context, refresh string) (*user.Session, error) {
	resp, err := c.rpc.Refresh(withCall(ctx), &userv1.RefreshRequest{RefreshToken: refresh})
	if err != nil {
		return nil, FromMicro(err)
	}
	return sessionFromProto(resp), nil
}

// Validate asks the service to verify an access token (signature, expiry,
// the user still active, not logged out); nil means every claim in it is
// the service's own.
func (c *Users) Validate(ctx context.Context, access string) error {
	if _, err := c.rpc.Validate(withCall(ctx), &userv1.ValidateRequest{AccessToken: access}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// Revoke logs out.
func (c *Users) Revoke(ctx context.Context, refresh, access string) error {
	if _, err := c.rpc.Revoke(withCall(ctx), &userv1.RevokeRequest{RefreshToken: refresh, AccessToken: access}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// CreatePasswordReset mails a reset link when the email is registered.
func (c *Users) CreatePasswordReset(ctx context.Context, email string) error {
	if _, err := c.rpc.CreatePasswordReset(withCall(ctx), &userv1.CreatePasswordResetRequest{Email: email}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// ResetPassword consumes a reset token.
func (c *Users) ResetPassword(ctx context.Context, token, password string) error {
	if _, err := c.rpc.ResetPassword(withCall(ctx), &userv1.ResetPasswordRequest{Token: token, Password: password}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// VerifyEmail consumes a mailed verification token.
func (c *Users) VerifyEmail(ctx context.Context, token string) error {
	if _, err := c.rpc.VerifyEmail(withCall(ctx), &userv1.VerifyEmailRequest{Token: token}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// ResendVerification mails a new verification link to an unverified
// address; it answers the same for any address.
func (c *Users) ResendVerification(ctx context.Context, email string) error {
	if _, err := c.rpc.ResendVerification(withCall(ctx), &userv1.ResendVerificationRequest{Email: email}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// Keys returns the JWKS document.
func (c *Users) Keys(ctx context.Context) ([]byte, error) {
	resp, err := c.rpc.Keys(withCall(ctx), &userv1.KeysRequest{})
	if err != nil {
		return nil, FromMicro(err)
	}
	return []byte(resp.GetJwks()), nil
}

// Sessions lists a user's live sessions.
func (c *Users) Sessions(ctx context.Context, id string) ([]user.SessionInfo, error) {
	resp, err := c.rpc.ListSessions(withCall(ctx), &userv1.ListSessionsRequest{Id: id})
	if err != nil {
		return nil, FromMicro(err)
	}
	out := make([]user.SessionInfo, len(resp.GetSessions()))
	for i, s := range resp.GetSessions() {
		out[i] = user.SessionInfo{ID: s.GetId(), StartedAt: s.GetStartedAt().AsTime(),
			LastUsedAt: s.GetLastUsedAt().AsTime(), ExpiresAt: s.GetExpiresAt().AsTime()}
	}
	return out, nil
}

// EndSessions signs a user out everywhere.
func (c *Users) EndSessions(ctx context.Context, id string) error {
	if _, err := c.rpc.EndSessions(withCall(ctx), &userv1.EndSessionsRequest{Id: id}); err != nil {
		return FromMicro(err)
	}
	return nil
}
