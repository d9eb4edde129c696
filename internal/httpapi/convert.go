package httpapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/user"
)

// userJSON is a user as every response shows it (the User schema).
type userJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func userFromProto(u *userv1.UserInfo) userJSON {
	return userJSON{
		ID: u.GetId(), Email: u.GetEmail(), Name: u.GetName(),
		Role:      string(rpc.RoleFromProto(u.GetRole())),
		Status:    string(rpc.StatusFromProto(u.GetStatus())),
		CreatedAt: rfc3339(u.GetCreatedAt()), UpdatedAt: rfc3339(u.GetUpdatedAt()),
	}
}

// rfc3339 renders a timestamp in UTC with as many fractional digits as it
// has (none when whole), which is valid RFC 3339 date-time.
func rfc3339(ts *timestamppb.Timestamp) string {
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}

// parseRole maps the JSON role name to the enum; ok is false for an unknown
// name (the enum has no way to carry it to the service).
func parseRole(s string) (userv1.Role, bool) {
	r := user.Role(s)
	return rpc.RoleToProto(r), r.Valid()
}

// parseStatus is parseRole for statuses.
func parseStatus(s string) (userv1.Status, bool) {
	st := user.Status(s)
	return rpc.StatusToProto(st), st.Valid()
}
