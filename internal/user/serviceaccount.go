package user

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/token"
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

func joinScopes(scs []Scope) string {
	parts := make([]string, len(scs))
	for i, sc := range scs {
		parts[i] = string(sc)
	}
	return strings.Join(parts, " ")
}

// CreateServiceAccount makes an account and returns it with its secret,
// which is shown once and stored only hashed. Only System (the admin CLI)
// may create one.
func (s *Service) CreateServiceAccount(ctx context.Context, actor Actor, name string, scopes []Scope) (*ServiceAccount, string, error) {
	if !actor.System {
		return nil, "", Forbidden("service accounts are managed with the admin CLI")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxServiceAccountName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, "", Invalid(map[string]string{"name": "must be 1 to 64 printable characters"})
	}
	if len(scopes) == 0 {
		return nil, "", Invalid(map[string]string{"scopes": "at least one scope is required"})
	}
	id, err := newID()
	if err != nil {
		return nil, "", Internal("new id", err)
	}
	secret, hash, err := token.NewOpaque()
	if err != nil {
		return nil, "", Internal("new secret", err)
	}
	a := ServiceAccount{ID: id, Name: name, SecretHash: hash, Scopes: scopes, CreatedAt: s.clock()}
	if err := s.store.CreateServiceAccount(ctx, a); err != nil {
		return nil, "", storeErr("create service account", err)
	}
	return &a, secret, nil
}

// ListServiceAccounts returns every service account (System only).
func (s *Service) ListServiceAccounts(ctx context.Context, actor Actor) ([]ServiceAccount, error) {
	if !actor.System {
		return nil, Forbidden("service accounts are managed with the admin CLI")
	}
	as, err := s.store.ListServiceAccounts(ctx)
	if err != nil {
		return nil, storeErr("list service accounts", err)
	}
	return as, nil
}

// RevokeServiceAccount disables an account at once: its tokens stop
// validating on their next use, and its secret no longer signs in.
func (s *Service) RevokeServiceAccount(ctx context.Context, actor Actor, id string) error {
	if !actor.System {
		return Forbidden("service accounts are managed with the admin CLI")
	}
	if p := checkID(id); p != "" {
		return Invalid(map[string]string{"id": p})
	}
	ok, err := s.store.RevokeServiceAccount(ctx, id, s.clock())
	if err != nil {
		return storeErr("revoke service account", err)
	}
	if !ok {
		return &Error{Code: CodeNotFound, Message: "no such active service account"}
	}
	return nil
}

// ClientSession is what the client credentials grant hands out: an access
// token only (RFC 6749 section 4.4.3: no refresh token).
type ClientSession struct {
	AccessToken     string
	AccessExpiresAt time.Time
	Scope           string
}

// AuthClient checks a service account's client id and secret and issues a
// short-lived access token carrying its scopes. An unknown id, a revoked
// account and a wrong secret are one answer, ErrBadClient.
func (s *Service) AuthClient(ctx context.Context, clientID, secret string) (*ClientSession, error) {
	fields := map[string]string{}
	if checkID(clientID) != "" {
		fields["client_id"] = "must be a client id this service issued"
	}
	if secret == "" || len(secret) > MaxTokenBytes {
		fields["client_secret"] = "is required"
	}
	if len(fields) > 0 {
		return nil, Invalid(fields)
	}
	a, err := s.activeServiceAccount(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(token.HashOpaque(secret)), []byte(a.SecretHash)) != 1 {
		return nil, ErrBadClient
	}
	scope := joinScopes(a.Scopes)
	access, claims, err := s.tokens.IssueClient(ctx, a.ID, scope)
	if err != nil {
		return nil, Internal("issue access token", err)
	}
	return &ClientSession{AccessToken: access, AccessExpiresAt: claims.ExpiresAt, Scope: scope}, nil
}

// activeServiceAccount loads an account that exists and is not revoked.
func (s *Service) activeServiceAccount(ctx context.Context, id string) (*ServiceAccount, error) {
	a, err := s.store.ServiceAccountByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrBadClient
	}
	if err != nil {
		return nil, storeErr("get service account", err)
	}
	if a.RevokedAt != nil {
		return nil, ErrBadClient
	}
	return a, nil
}

// Authenticate establishes who is calling from an access token: a user's
// (checked as Validate checks it) or a service account's (signature, expiry,
// and the account not revoked; its scopes are those the token grants, never
// more than the account still has). "" is the anonymous caller. For a user
// the loaded user is returned too, so an operation on the caller's own user
// need not read it again.
func (s *Service) Authenticate(ctx context.Context, access string) (Actor, *User, error) {
	if access == "" {
		return Actor{}, nil, nil
	}
	v, err := s.validate(ctx, access)
	if err != nil {
		return Actor{}, nil, err
	}
	if v.Account != nil {
		return Actor{ID: v.Account.ID, ServiceAccount: true, Scopes: v.Scopes}, nil, nil
	}
	return Actor{ID: v.User.ID, Role: v.User.Role}, v.User, nil
}

// clientScopes is the intersection of what a token grants and what the
// account has now, so narrowing an account takes effect on live tokens.
func clientScopes(granted string, a *ServiceAccount) []Scope {
	var out []Scope
	for _, f := range strings.Fields(granted) {
		if sc := Scope(f); slices.Contains(a.Scopes, sc) {
			out = append(out, sc)
		}
	}
	return out
}
