package httpapi

// This file holds every conversion between the domain's user types and the
// JSON the API reads and writes (the User, CreateUser and UpdateUser
// schemas of api/openapi.yaml), so a field added to a user is mapped in one
// place on this edge.

import (
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

// userJSON is a user as every response shows it (the User schema).
type userJSON struct {
	ID     string `json:"id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Status string `json:"status"`
	// EmailVerified and PendingEmail are always present ("" = no pending
	// change), like every field of the schema.
	EmailVerified bool   `json:"email_verified"`
	PendingEmail  string `json:"pending_email"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

func userToJSON(u *user.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), Status: string(u.Status),
		EmailVerified: u.EmailVerified, PendingEmail: u.PendingEmail,
		CreatedAt: rfc3339(u.CreatedAt), UpdatedAt: rfc3339(u.UpdatedAt)}
}

// rfc3339 renders a time in UTC with as many fractional digits as it has
// (none when whole), which is valid RFC 3339 date-time.
func rfc3339(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// createUserRequest is the body of POST /user.
type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	// Role is optional ("" = user); only an admin may create an admin.
	Role string `json:"role"`
}

// input is the request as the domain takes it.
func (in createUserRequest) input() user.CreateInput {
	return user.CreateInput{Email: in.Email, Password: in.Password, Name: in.Name, Role: user.Role(in.Role)}
}

// updateUserRequest holds optional fields; absent (or null) leaves a field
// unchanged.
type updateUserRequest struct {
	Name            *string `json:"name"`
	Email           *string `json:"email"`
	Password        *string `json:"password"`
	CurrentPassword *string `json:"current_password"`
	Role            *string `json:"role"`
	Status          *string `json:"status"`
}

// input is the request as the domain takes it; nil stays nil (unchanged).
func (in updateUserRequest) input() user.UpdateInput {
	return user.UpdateInput{Name: in.Name, Email: in.Email, Password: in.Password, CurrentPassword: in.CurrentPassword,
		Role: (*user.Role)(in.Role), Status: (*user.Status)(in.Status)}
}
