// Package userclient is a typed client of the user service over go-micro:
// domain types and *Error in and out, the protobuf contract kept inside.
// ServiceAccount signs a go-micro client's calls with a service account's
// client-credentials token, renewed before it expires.
package userclient

import (
	"context"
	"fmt"
	"time"

	"go-micro.dev/v6/client"
	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/sdk/auth"
)

// ServiceName is the user service's name in the registry.
const ServiceName = "user.service"

// Client calls the user service. The caller's credential travels in the
// context (authmicro.WithBearer, or a client wrapped by ServiceAccount).
type Client struct {
	rpc userv1.UserService
}

// New returns a Client calling ServiceName through c.
func New(c client.Client) *Client { return NewNamed(ServiceName, c) }

// NewNamed returns a Client calling the service registered as name.
func NewNamed(name string, c client.Client) *Client {
	return &Client{rpc: userv1.NewUserService(name, c)}
}

// User is a user as the service shows it (never a password hash).
type User struct {
	ID            string
	Email         string
	Name          string
	Role          string // auth.RoleUser or auth.RoleAdmin
	Active        bool   // false: disabled
	EmailVerified bool
	PendingEmail  string // an address change awaiting verification
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func userFromProto(u *userv1.UserInfo) *User {
	if u == nil {
		return nil
	}
	role := auth.RoleUser
	if u.GetRole() == userv1.Role_ROLE_ADMIN {
		role = auth.RoleAdmin
	}
	return &User{ID: u.GetId(), Email: u.GetEmail(), Name: u.GetName(), Role: role,
		Active: u.GetStatus() == userv1.Status_STATUS_ACTIVE, EmailVerified: u.GetEmailVerified(),
		PendingEmail: u.GetPendingEmail(), CreatedAt: u.GetCreatedAt().AsTime(), UpdatedAt: u.GetUpdatedAt().AsTime()}
}

// Get reads one user (a service account needs the users:read scope).
func (c *Client) Get(ctx context.Context, id string) (*User, error) {
	resp, err := c.rpc.Get(ctx, &userv1.GetRequest{Id: id})
	if err != nil {
		return nil, fromMicro(err)
	}
	return userFromProto(resp.GetUser()), nil
}

// ListOptions select a page of users; zero values are the service's
// defaults (first page, 20 users).
type ListOptions struct {
	PageSize int
	Cursor   string // from Page.NextCursor
	Query    string // prefix of the email or name
}

// Page is one page of users; NextCursor is "" on the last.
type Page struct {
	Users      []*User
	NextCursor string
}

// List reads a page of users, keyset-paged by cursor.
func (c *Client) List(ctx context.Context, o ListOptions) (*Page, error) {
	resp, err := c.rpc.Pagination(ctx, &userv1.PaginationRequest{PageSize: int32(o.PageSize), Cursor: o.Cursor, Query: o.Query})
	if err != nil {
		return nil, fromMicro(err)
	}
	p := &Page{NextCursor: resp.GetNextCursor(), Users: make([]*User, len(resp.GetUsers()))}
	for i, u := range resp.GetUsers() {
		p.Users[i] = userFromProto(u)
	}
	return p, nil
}

// Validation is the service's own verdict on a token: the full check,
// including revocations, at the cost of a call.
type Validation struct {
	User      *User  // nil for a service account's token
	ClientID  string // a service account's
	Scopes    []string
	TokenID   string
	ExpiresAt time.Time
}

// Validate asks the service about token. Prefer auth.Verifier, which
// decides locally; this is for the rare caller that must have the
// service's answer of this instant.
func (c *Client) Validate(ctx context.Context, token string) (*Validation, error) {
	resp, err := c.rpc.Validate(ctx, &userv1.ValidateRequest{AccessToken: token})
	if err != nil {
		return nil, fromMicro(err)
	}
	return &Validation{User: userFromProto(resp.GetUser()), ClientID: resp.GetClientId(), Scopes: resp.GetScopes(),
		TokenID: resp.GetTokenId(), ExpiresAt: resp.GetExpiresAt().AsTime()}, nil
}

// Keys returns the service's JWKS document.
func (c *Client) Keys(ctx context.Context) ([]byte, error) {
	resp, err := c.rpc.Keys(ctx, &userv1.KeysRequest{})
	if err != nil {
		return nil, fromMicro(err)
	}
	return []byte(resp.GetJwks()), nil
}

// KeySource is the JWKS fetched with the Keys RPC, for auth.Config.Keys:
// a service that already talks go-micro needs no HTTP route to the API.
func (c *Client) KeySource() auth.KeySource { return auth.KeySourceFunc(c.Keys) }

// ClientToken is a service account's access token.
type ClientToken struct {
	AccessToken string
	ExpiresAt   time.Time
	Scopes      string // space-separated
}

// AuthClient exchanges a service account's client credentials for an
// access token (OAuth 2.0 client credentials grant).
func (c *Client) AuthClient(ctx context.Context, clientID, secret string) (*ClientToken, error) {
	start := time.Now()
	resp, err := c.rpc.Auth(ctx, &userv1.AuthRequest{ClientId: clientID, ClientSecret: secret})
	if err != nil {
		return nil, fromMicro(err)
	}
	// expires_in is relative, so no clock agreement is needed; counting it
	// from before the call errs on the early side.
	return &ClientToken{AccessToken: resp.GetAccessToken(), Scopes: resp.GetScope(),
		ExpiresAt: start.Add(time.Duration(resp.GetExpiresIn()) * time.Second)}, nil
}

// RevocationsSince returns every token revocation still in force decided
// at or after since (the service bounds it to one access-token lifetime),
// page by page: the catch-up of sdk/revocations. The caller must be a
// service account (or an admin).
func (c *Client) RevocationsSince(ctx context.Context, since time.Time) ([]auth.Revocation, error) {
	var out []auth.Revocation
	after := ""
	for {
		resp, err := c.rpc.Revocations(ctx, &userv1.RevocationsRequest{Since: timestamppb.New(since), After: after})
		if err != nil {
			return nil, fromMicro(err)
		}
		for _, body := range resp.GetRevocations() {
			r, err := auth.ParseRevocation([]byte(body))
			if err != nil {
				return nil, fmt.Errorf("usersvc: revocations: %w", err)
			}
			out = append(out, r)
		}
		if resp.GetNextAfter() == "" || len(resp.GetRevocations()) == 0 {
			return out, nil
		}
		after = resp.GetNextAfter()
	}
}
