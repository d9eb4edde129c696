package rpc

import (
	"context"
	"encoding/json"
	"time"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
)

// The passkey RPCs: registration is the account owner's (user.OpFactors,
// like TOTP); a passwordless sign-in is anonymous and, like Auth, under
// the per-client sign-in limit. The WebAuthn options and responses travel
// as JSON bytes, untouched.

// BeginPasskey starts a passkey registration.
func (h *Handler) BeginPasskey(ctx context.Context, in *userv1.BeginPasskeyRequest, out *userv1.BeginPasskeyResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	r, err := h.svc.BeginPasskey(ctx, actor, in.GetId(), in.GetName())
	if err != nil {
		return toMicro(err)
	}
	out.FactorId, out.Options = r.FactorID, r.Options
	return nil
}

// FinishPasskey verifies the attestation and activates the factor.
func (h *Handler) FinishPasskey(ctx context.Context, in *userv1.FinishPasskeyRequest, out *userv1.FinishPasskeyResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	out.RecoveryCodes, err = h.svc.FinishPasskey(ctx, actor, in.GetId(), in.GetFactorId(), in.GetCredential())
	return toMicro(err)
}

// BeginPasswordless starts a passwordless sign-in.
func (h *Handler) BeginPasswordless(ctx context.Context, _ *userv1.BeginPasswordlessRequest, out *userv1.BeginPasswordlessResponse) error {
	if err := h.limits.allow(ctx, ratelimit.SignIn); err != nil {
		return toMicro(err)
	}
	c, err := h.svc.BeginPasswordless(ctx)
	if err != nil {
		return toMicro(err)
	}
	out.Ceremony, out.Options = c.Ceremony, c.Options
	out.ExpiresIn = int64(c.ExpiresAt.Sub(timeNow()).Round(time.Second).Seconds())
	return nil
}

// CompletePasswordless signs in with a passkey's assertion.
func (h *Handler) CompletePasswordless(ctx context.Context, in *userv1.CompletePasswordlessRequest, out *userv1.AuthResponse) error {
	if err := h.limits.allow(ctx, ratelimit.SignIn); err != nil {
		return toMicro(err)
	}
	s, err := h.svc.CompletePasswordless(ctx, in.GetCeremony(), in.GetCredential())
	if err != nil {
		return toMicro(err)
	}
	sessionToProto(s, out)
	return nil
}

// BeginPasskey starts a passkey registration of the caller's own account.
func (c *Users) BeginPasskey(ctx context.Context, id, name string) (*user.PasskeyRegistration, error) {
	resp, err := c.rpc.BeginPasskey(withCall(ctx), &userv1.BeginPasskeyRequest{Id: id, Name: name})
	if err != nil {
		return nil, FromMicro(err)
	}
	return &user.PasskeyRegistration{FactorID: resp.GetFactorId(), Options: json.RawMessage(resp.GetOptions())}, nil
}

// FinishPasskey finishes it with the browser's attestation response; the
// first factor's recovery codes come back.
func (c *Users) FinishPasskey(ctx context.Context, id, factorID string, credential []byte) ([]string, error) {
	resp, err := c.rpc.FinishPasskey(withCall(ctx), &userv1.FinishPasskeyRequest{Id: id, FactorId: factorID, Credential: credential})
	if err != nil {
		return nil, FromMicro(err)
	}
	return resp.GetRecoveryCodes(), nil
}

// BeginPasswordless starts a passwordless passkey sign-in.
func (c *Users) BeginPasswordless(ctx context.Context) (*user.PasswordlessChallenge, error) {
	resp, err := c.rpc.BeginPasswordless(withCall(ctx), &userv1.BeginPasswordlessRequest{})
	if err != nil {
		return nil, FromMicro(err)
	}
	return &user.PasswordlessChallenge{Ceremony: resp.GetCeremony(), Options: json.RawMessage(resp.GetOptions()),
		ExpiresAt: timeNow().Add(time.Duration(resp.GetExpiresIn()) * time.Second)}, nil
}

// CompletePasswordless signs in with the ceremony and the passkey's
// assertion response.
func (c *Users) CompletePasswordless(ctx context.Context, ceremony string, credential []byte) (*user.Session, error) {
	resp, err := c.rpc.CompletePasswordless(withCall(ctx), &userv1.CompletePasswordlessRequest{Ceremony: ceremony, Credential: credential})
	if err != nil {
		return nil, FromMicro(err)
	}
	return sessionFromProto(resp), nil
}
