package httpapi

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
