package rpc

// This file holds every conversion between the domain's types and the
// protobuf contract, for the handler and the client alike, so a field added
// to a user is mapped in one place on this edge.

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/user"
)

// createFromProto is the handler's side of Create.
func createFromProto(in *userv1.CreateRequest) user.CreateInput {
	return user.CreateInput{Email: in.GetEmail(), Password: in.GetPassword(), Name: in.GetName(),
		Role: RoleFromProto(in.GetRole())}
}

// createToProto is the client's side of Create.
func createToProto(in user.CreateInput) *userv1.CreateRequest {
	return &userv1.CreateRequest{Email: in.Email, Password: in.Password, Name: in.Name, Role: RoleToProto(in.Role)}
}

// updateFromProto is the handler's side of Update; an absent optional
// field stays nil, which the domain reads as "unchanged".
func updateFromProto(in *userv1.UpdateRequest) user.UpdateInput {
	upd := user.UpdateInput{Name: in.Name, Email: in.Email, Password: in.Password, CurrentPassword: in.CurrentPassword}
	if in.Role != nil {
		r := RoleFromProto(in.GetRole())
		upd.Role = &r
	}
	if in.Status != nil {
		s := StatusFromProto(in.GetStatus())
		upd.Status = &s
	}
	return upd
}

// updateToProto is the client's side of Update.
func updateToProto(id string, in user.UpdateInput) *userv1.UpdateRequest {
	req := &userv1.UpdateRequest{Id: id, Name: in.Name, Email: in.Email, Password: in.Password,
		CurrentPassword: in.CurrentPassword}
	if in.Role != nil {
		r := RoleToProto(*in.Role)
		req.Role = &r
	}
	if in.Status != nil {
		s := StatusToProto(*in.Status)
		req.Status = &s
	}
	return req
}

// sessionToProto fills a sign-in response; lifetimes travel as seconds
// from now, so the client needs no synchronised clock.
func sessionToProto(s *user.Session, out *userv1.AuthResponse) {
	now := timeNow()
	if s.MFA != nil { // a challenge: no tokens, no user
		out.Mfa = &userv1.MFAChallenge{Ticket: s.MFA.Ticket, Factors: s.MFA.Factors, Webauthn: s.MFA.WebAuthn,
			ExpiresIn: int64(s.MFA.ExpiresAt.Sub(now).Round(1e9).Seconds())}
		return
	}
	out.AccessToken = s.AccessToken
	out.TokenType = "Bearer"
	out.ExpiresIn = int64(s.AccessExpiresAt.Sub(now).Round(1e9).Seconds())
	out.RefreshToken = s.RefreshToken
	out.RefreshExpiresIn = int64(s.RefreshExpiresAt.Sub(now).Round(1e9).Seconds())
	out.User = UserToProto(s.User)
}

// UserToProto renders a user without its password hash.
func UserToProto(u *user.User) *userv1.UserInfo {
	return &userv1.UserInfo{Id: u.ID, Email: u.Email, Name: u.Name, Role: RoleToProto(u.Role),
		Status: StatusToProto(u.Status), EmailVerified: u.EmailVerified, PendingEmail: u.PendingEmail,
		CreatedAt: timestamppb.New(u.CreatedAt), UpdatedAt: timestamppb.New(u.UpdatedAt)}
}

// roles and statuses pair each specified enum value with its domain value;
// the enums' zero (unspecified) pairs with "".
var (
	roles    = map[userv1.Role]user.Role{userv1.Role_ROLE_USER: user.RoleUser, userv1.Role_ROLE_ADMIN: user.RoleAdmin}
	statuses = map[userv1.Status]user.Status{
		userv1.Status_STATUS_ACTIVE: user.StatusActive, userv1.Status_STATUS_DISABLED: user.StatusDisabled}
)

// RoleFromProto maps the enum; unspecified is "" (any/default) and an
// unknown value becomes an invalid role the domain rejects.
func RoleFromProto(r userv1.Role) user.Role { return fromProto(roles, r) }

// RoleToProto maps a role onto the enum; an unknown role is unspecified.
func RoleToProto(r user.Role) userv1.Role { return toProto(roles, r) }

// StatusFromProto maps the enum like RoleFromProto.
func StatusFromProto(s userv1.Status) user.Status { return fromProto(statuses, s) }

// StatusToProto maps a status like RoleToProto.
func StatusToProto(s user.Status) userv1.Status { return toProto(statuses, s) }

// fromProto is the one rule for both enums: the zero value is "" and a
// value the table lacks is "unknown", which the domain rejects as invalid.
func fromProto[P comparable, D ~string](table map[P]D, p P) D {
	var unspecified P
	if p == unspecified {
		return ""
	}
	if d, ok := table[p]; ok {
		return d
	}
	return D("unknown")
}

// toProto maps a domain value back; one the table lacks is the zero value.
func toProto[P, D comparable](table map[P]D, d D) P {
	for p, v := range table {
		if v == d {
			return p
		}
	}
	var unspecified P
	return unspecified
}

// sessionFromProto rebuilds a session; the lifetimes travel as seconds.
func sessionFromProto(r *userv1.AuthResponse) *user.Session {
	now := timeNow()
	if m := r.GetMfa(); m != nil {
		return &user.Session{MFA: &user.MFAChallenge{Ticket: m.GetTicket(), Factors: m.GetFactors(), WebAuthn: m.GetWebauthn(),
			ExpiresAt: now.Add(time.Duration(m.GetExpiresIn()) * time.Second)}}
	}
	s := &user.Session{AccessToken: r.GetAccessToken(), RefreshToken: r.GetRefreshToken(),
		AccessExpiresAt:  now.Add(time.Duration(r.GetExpiresIn()) * time.Second),
		RefreshExpiresAt: now.Add(time.Duration(r.GetRefreshExpiresIn()) * time.Second)}
	if r.GetUser() != nil {
		s.User = UserFromProto(r.GetUser())
	}
	return s
}

// UserFromProto is UserToProto's inverse (there is no password hash).
func UserFromProto(u *userv1.UserInfo) *user.User {
	return &user.User{ID: u.GetId(), Email: u.GetEmail(), Name: u.GetName(), Role: RoleFromProto(u.GetRole()),
		Status: StatusFromProto(u.GetStatus()), EmailVerified: u.GetEmailVerified(), PendingEmail: u.GetPendingEmail(),
		CreatedAt: u.GetCreatedAt().AsTime(), UpdatedAt: u.GetUpdatedAt().AsTime()}
}
