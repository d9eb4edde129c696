package user

import (
	"slices"
	"strings"
	"time"
)

// Scope is a permission a service account's token grants.
type Scope string

const (
	// ScopeRead: Get any user, list and search users.
	ScopeRead Scope = "users:read"
	// ScopeWrite: ScopeRead, and create plain users, change any user's
	// name, email and password, delete users.
	ScopeWrite Scope = "users:write"
	// ScopeAdmin: everything an admin user may do, including roles and
	// statuses.
	ScopeAdmin Scope = "users:admin"
)

// Scopes lists every scope, in increasing power.
var Scopes = []Scope{ScopeRead, ScopeWrite, ScopeAdmin}

// ServiceAccount is a machine caller: another service of the system that
// calls this one with its own identity. It is never a user: it has no email
// and no password and cannot log in with one. Its secret is random (256
// bits), so it is stored as a SHA-256 hash like refresh tokens, not with
// argon2, which exists to slow down guessing of low-entropy passwords.
type ServiceAccount struct {
	ID         string // the client id, a UUIDv7
	Name       string
	SecretHash string
	Scopes     []Scope
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

// MaxServiceAccountName bounds a service account's name.
const MaxServiceAccountName = 64

// ParseScopes parses a space- or comma-separated scope list: each must be
// known, and at least one is required. The result is sorted and unique.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		sc := Scope(f)
		if !slices.Contains(Scopes, sc) {
			return nil, Invalid(map[string]string{"scopes": "unknown scope " + f + " (known: users:read, users:write, users:admin)"})
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, Invalid(map[string]string{"scopes": "at least one scope is required"})
	}
	slices.Sort(out)
	return out, nil
}

// JoinScopes is the scope claim of scs: their names, space-separated.
func JoinScopes(scs []Scope) string {
	parts := make([]string, len(scs))
	for i, sc := range scs {
		parts[i] = string(sc)
	}
	return strings.Join(parts, " ")
}

// ClientSession is what the client credentials grant hands out: an access
// token only (RFC 6749 section 4.4.3: no refresh token).
type ClientSession struct {
	AccessToken     string
	AccessExpiresAt time.Time
	Scope           string
}

// Granted is the intersection of the scopes a token grants (its scope
// claim) and those the account has now, so narrowing an account takes effect on live tokens.
func (a *ServiceAccount) Granted(granted string) []Scope {
	var out []Scope
	for _, f := range strings.Fields(granted) {
		if sc := Scope(f); slices.Contains(a.Scopes, sc) {
			out = append(out, sc)
		}
	}
	return out
}
