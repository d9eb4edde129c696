package userclient

import (
	"context"
	"strings"
	"sync"
	"time"

	"go-micro.dev/v6/client"
	"go-micro.dev/v6/metadata"
)

// ServiceAccount holds a service account's access token and renews it
// before it expires. It is safe for concurrent use; one renewal runs at a
// time and every caller waiting for it shares its result.
type ServiceAccount struct {
	users    *Client
	id       string
	secret   string
	now      func() time.Time
	mu       sync.Mutex
	tok      *ClientToken
	margin   time.Duration
	renewals int
}

// NewServiceAccount returns a token source for the account; users must be
// a Client whose calls are not signed by this account (the renewal itself
// is a call).
func NewServiceAccount(users *Client, clientID, secret string) *ServiceAccount {
	return &ServiceAccount{users: users, id: clientID, secret: secret, now: time.Now}
}

// renewMargin is how long before expiry a token is replaced: a fifth of
// its lifetime (3 minutes of the default 15), so a call signed with it
// still has time to reach the callee and be checked within its leeway.
func renewMargin(t *ClientToken, issued time.Time) time.Duration { return t.ExpiresAt.Sub(issued) / 5 }

// Token returns a token valid for at least the renewal margin, fetching a
// new one when the held one is within it.
func (s *ServiceAccount) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.tok != nil && now.Before(s.tok.ExpiresAt.Add(-s.margin)) {
		return s.tok.AccessToken, nil
	}
	t, err := s.users.AuthClient(ctx, s.id, s.secret)
	if err != nil {
		return "", err
	}
	s.tok, s.margin = t, renewMargin(t, now)
	s.renewals++
	return t.AccessToken, nil
}

// Wrapper is a go-micro client wrapper that signs every call lacking an
// authorization with the account's token, e.g.
//
//	c := grpc.NewClient(client.Registry(reg), client.Wrap(sa.Wrapper()))
//
// A call that already carries one (a user's token being forwarded) keeps it.
func (s *ServiceAccount) Wrapper() client.Wrapper {
	return func(c client.Client) client.Client { return &signed{Client: c, sa: s} }
}

type signed struct {
	client.Client
	sa *ServiceAccount
}

func (c *signed) Call(ctx context.Context, req client.Request, rsp any, opts ...client.CallOption) error {
	ctx, err := c.sign(ctx)
	if err != nil {
		return err
	}
	return c.Client.Call(ctx, req, rsp, opts...)
}

func (c *signed) Stream(ctx context.Context, req client.Request, opts ...client.CallOption) (client.Stream, error) {
	ctx, err := c.sign(ctx)
	if err != nil {
		return nil, err
	}
	return c.Client.Stream(ctx, req, opts...)
}

func (c *signed) sign(ctx context.Context) (context.Context, error) {
	if md, ok := metadata.FromContext(ctx); ok {
		for k := range md {
			if strings.EqualFold(k, "Authorization") {
				return ctx, nil
			}
		}
	}
	tok, err := c.sa.Token(ctx)
	if err != nil {
		return nil, err
	}
	return metadata.MergeContext(ctx, metadata.Metadata{"Authorization": "Bearer " + tok}, true), nil
}
