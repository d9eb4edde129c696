package rpc

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/user"
)

// The second-factor RPCs: the account's owner manages its factors
// (user.OpFactors); the domain decides, these only translate.

// EnrolTOTP starts a TOTP enrolment.
func (h *Handler) EnrolTOTP(ctx context.Context, in *userv1.EnrolTOTPRequest, out *userv1.EnrolTOTPResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	e, err := h.svc.EnrolTOTP(ctx, actor, in.GetId(), in.GetName())
	if err != nil {
		return toMicro(err)
	}
	out.FactorId, out.Secret, out.Uri, out.QrPng = e.FactorID, e.Secret, e.URI, e.QRPNG
	return nil
}

// ConfirmTOTP activates an enrolment with one code.
func (h *Handler) ConfirmTOTP(ctx context.Context, in *userv1.ConfirmTOTPRequest, out *userv1.ConfirmTOTPResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	out.RecoveryCodes, err = h.svc.ConfirmTOTP(ctx, actor, in.GetId(), in.GetFactorId(), in.GetCode())
	return toMicro(err)
}

// ListFactors lists the owner's factors.
func (h *Handler) ListFactors(ctx context.Context, in *userv1.ListFactorsRequest, out *userv1.ListFactorsResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	list, left, err := h.svc.Factors(ctx, actor, in.GetId())
	if err != nil {
		return toMicro(err)
	}
	out.RecoveryCodesLeft = int32(left)
	out.Factors = make([]*userv1.Factor, len(list))
	for i, f := range list {
		out.Factors[i] = &userv1.Factor{Id: f.ID, Kind: f.Kind, Name: f.Name, Active: f.Active, CreatedAt: timestamppb.New(f.CreatedAt)}
		if f.LastUsedAt != nil {
			out.Factors[i].LastUsedAt = timestamppb.New(*f.LastUsedAt)
		}
	}
	return nil
}

// RegenerateRecoveryCodes replaces the owner's recovery codes.
func (h *Handler) RegenerateRecoveryCodes(ctx context.Context, in *userv1.RegenerateRecoveryCodesRequest, out *userv1.RegenerateRecoveryCodesResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	out.RecoveryCodes, err = h.svc.RegenerateRecoveryCodes(ctx, actor, in.GetId())
	return toMicro(err)
}

// CompleteMFA finishes a sign-in with the ticket of its challenge and a code.
func (c *Users) CompleteMFA(ctx context.Context, ticket, kind, code string) (*user.Session, error) {
	resp, err := c.rpc.Auth(withCall(ctx), &userv1.AuthRequest{MfaTicket: ticket, Factor: kind, Code: code})
	if err != nil {
		return nil, FromMicro(err)
	}
	return sessionFromProto(resp), nil
}

// EnrolTOTP starts a TOTP enrolment of the caller's own account.
func (c *Users) EnrolTOTP(ctx context.Context, id, name string) (*user.TOTPEnrolment, error) {
	resp, err := c.rpc.EnrolTOTP(withCall(ctx), &userv1.EnrolTOTPRequest{Id: id, Name: name})
	if err != nil {
		return nil, FromMicro(err)
	}
	return &user.TOTPEnrolment{FactorID: resp.GetFactorId(), Secret: resp.GetSecret(), URI: resp.GetUri(), QRPNG: resp.GetQrPng()}, nil
}

// ConfirmTOTP activates an enrolment; the first factor's recovery codes come back.
func (c *Users) ConfirmTOTP(ctx context.Context, id, factorID, code string) ([]string, error) {
	resp, err := c.rpc.ConfirmTOTP(withCall(ctx), &userv1.ConfirmTOTPRequest{Id: id, FactorId: factorID, Code: code})
	if err != nil {
		return nil, FromMicro(err)
	}
	return resp.GetRecoveryCodes(), nil
}

// Factors lists the caller's own factors and their recovery codes left.
func (c *Users) Factors(ctx context.Context, id string) ([]user.FactorInfo, int, error) {
	resp, err := c.rpc.ListFactors(withCall(ctx), &userv1.ListFactorsRequest{Id: id})
	if err != nil {
		return nil, 0, FromMicro(err)
	}
	out := make([]user.FactorInfo, len(resp.GetFactors()))
	for i, f := range resp.GetFactors() {
		out[i] = user.FactorInfo{ID: f.GetId(), Kind: f.GetKind(), Name: f.GetName(), Active: f.GetActive(),
			CreatedAt: f.GetCreatedAt().AsTime()}
		if f.GetLastUsedAt() != nil {
			t := f.GetLastUsedAt().AsTime()
			out[i].LastUsedAt = &t
		}
	}
	return out, int(resp.GetRecoveryCodesLeft()), nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes.
func (c *Users) RegenerateRecoveryCodes(ctx context.Context, id string) ([]string, error) {
	resp, err := c.rpc.RegenerateRecoveryCodes(withCall(ctx), &userv1.RegenerateRecoveryCodesRequest{Id: id})
	if err != nil {
		return nil, FromMicro(err)
	}
	return resp.GetRecoveryCodes(), nil
}

// RemoveFactor removes one of a user's factors (the owner, or an admin).
func (h *Handler) RemoveFactor(ctx context.Context, in *userv1.RemoveFactorRequest, _ *userv1.RemoveFactorResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.RemoveFactor(ctx, actor, in.GetId(), in.GetFactorId()))
}

// RemoveFactors removes all of a user's factors and recovery codes.
func (h *Handler) RemoveFactors(ctx context.Context, in *userv1.RemoveFactorsRequest, _ *userv1.RemoveFactorsResponse) error {
	actor, _, err := h.identified(ctx)
	if err != nil {
		return toMicro(err)
	}
	return toMicro(h.svc.RemoveFactors(ctx, actor, in.GetId()))
}

// RemoveFactor removes one of the user's factors.
func (c *Users) RemoveFactor(ctx context.Context, id, factorID string) error {
	if _, err := c.rpc.RemoveFactor(withCall(ctx), &userv1.RemoveFactorRequest{Id: id, FactorId: factorID}); err != nil {
		return FromMicro(err)
	}
	return nil
}

// RemoveFactors removes all the user's factors and recovery codes.
func (c *Users) RemoveFactors(ctx context.Context, id string) error {
	if _, err := c.rpc.RemoveFactors(withCall(ctx), &userv1.RemoveFactorsRequest{Id: id}); err != nil {
		return FromMicro(err)
	}
	return nil
}
