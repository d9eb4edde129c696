// Package serviceaccount is the flow of machine callers: the admin CLI
// creates, lists and revokes service accounts, and a service account signs
// in with its client id and secret (the client credentials grant) for an
// access token carrying its scopes. What its token may do is decided by
// the domain's permissions (user.Actor), like a user's.
package serviceaccount

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Store is the storage the flow needs.
type Store interface {
	user.ServiceAccountRepo
	// AppendRevocation publishes a revocation (user.Repo's, outside a
	// transaction).
	AppendRevocation(ctx context.Context, r auth.Revocation) error
}

// Tokens issues a service account's access tokens.
type Tokens interface {
	IssueClient(ctx context.Context, clientID, scope string) (string, token.Claims, error)
	// TTL is the access-token lifetime, for how long a revocation lasts.
	TTL() time.Duration
}

// Accounts is the service-account flow.
type Accounts struct {
	store  Store
	tokens Tokens
	clock  user.Clock
}

// New builds the flow; clock nil is the system clock.
func New(store Store, tokens Tokens, clock user.Clock) *Accounts {
	return &Accounts{store: store, tokens: tokens, clock: clock}
}

// CreateServiceAccount makes an account and returns it with its secret,
// which is shown once and stored only hashed. Only System (the admin CLI)
// may create one.
func (s *Accounts) CreateServiceAccount(ctx context.Context, actor user.Actor, name string, scopes []user.Scope) (*user.ServiceAccount, string, error) {
	if !actor.System {
		return nil, "", user.Forbidden("service accounts are managed with the admin CLI")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > user.MaxServiceAccountName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, "", user.Invalid(map[string]string{"name": "must be 1 to 64 printable characters"})
	}
	if len(scopes) == 0 {
		return nil, "", user.Invalid(map[string]string{"scopes": "at least one scope is required"})
	}
	id, err := user.NewID()
	if err != nil {
		return nil, "", user.Internal("new id", err)
	}
	secret, hash, err := token.NewOpaque()
	if err != nil {
		return nil, "", user.Internal("new secret", err)
	}
	a := user.ServiceAccount{ID: id, Name: name, SecretHash: hash, Scopes: scopes, CreatedAt: s.clock.Now()}
	if err := s.store.CreateServiceAccount(ctx, a); err != nil {
		return nil, "", user.StoreErr("create service account", err)
	}
	return &a, secret, nil
}

// ListServiceAccounts returns every service account (System only).
func (s *Accounts) ListServiceAccounts(ctx context.Context, actor user.Actor) ([]user.ServiceAccount, error) {
	if !actor.System {
		return nil, user.Forbidden("service accounts are managed with the admin CLI")
	}
	as, err := s.store.ListServiceAccounts(ctx)
	if err != nil {
		return nil, user.StoreErr("list service accounts", err)
	}
	return as, nil
}

// RevokeServiceAccount disables an account at once: its tokens stop
// validating on their next use, and its secret no longer signs in.
func (s *Accounts) RevokeServiceAccount(ctx context.Context, actor user.Actor, id string) error {
	if !actor.System {
		return user.Forbidden("service accounts are managed with the admin CLI")
	}
	if p := user.CheckID(id); p != "" {
		return user.Invalid(map[string]string{"id": p})
	}
	// Other services are told first: a failure after this over-revokes
	// (the account's tokens so far, which a retry revokes anyway), while
	// the other order could revoke the account and tell nobody.
	now := s.clock.Now()
	rev, err := user.NewRevocation(auth.ReasonClientRevoked, now, s.tokens.TTL())
	if err != nil {
		return err
	}
	rev.Subject, rev.IssuedThrough = id, now
	if err := s.store.AppendRevocation(ctx, rev); err != nil {
		return user.StoreErr("publish revocation", err)
	}
	ok, err := s.store.RevokeServiceAccount(ctx, id, now)
	if err != nil {
		return user.StoreErr("revoke service account", err)
	}
	if !ok {
		return &user.Error{Code: user.CodeNotFound, Message: "no such active service account"}
	}
	return nil
}

// AuthClient checks a service account's client id and secret and issues a
// short-lived access token carrying its scopes. An unknown id, a revoked
// account and a wrong secret are one answer, user.ErrBadClient.
func (s *Accounts) AuthClient(ctx context.Context, clientID, secret string) (*user.ClientSession, error) {
	fields := map[string]string{}
	if user.CheckID(clientID) != "" {
		fields["client_id"] = "must be a client id this service issued"
	}
	if secret == "" || len(secret) > user.MaxTokenBytes {
		fields["client_secret"] = "is required"
	}
	if len(fields) > 0 {
		return nil, user.Invalid(fields)
	}
	a, err := s.Active(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(token.HashOpaque(secret)), []byte(a.SecretHash)) != 1 {
		return nil, user.ErrBadClient
	}
	scope := user.JoinScopes(a.Scopes)
	access, claims, err := s.tokens.IssueClient(ctx, a.ID, scope)
	if err != nil {
		return nil, user.Internal("issue access token", err)
	}
	return &user.ClientSession{AccessToken: access, AccessExpiresAt: claims.ExpiresAt, Scope: scope}, nil
}

// Active loads an account that exists and is not revoked; any other is
// user.ErrBadClient.
func (s *Accounts) Active(ctx context.Context, id string) (*user.ServiceAccount, error) {
	a, err := s.store.ServiceAccountByID(ctx, id)
	if errors.Is(err, user.ErrNotFound) {
		return nil, user.ErrBadClient
	}
	if err != nil {
		return nil, user.StoreErr("get service account", err)
	}
	if a.RevokedAt != nil {
		return nil, user.ErrBadClient
	}
	return a, nil
}
