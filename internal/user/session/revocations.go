package session

import (
	"context"
	"time"

	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// MaxRevocationsPage bounds one page of Revocations.
const MaxRevocationsPage = 1000

// Revocations returns a page of the token revocations still in force that
// were decided at or after since, for a verifier in another service that
// catches up (sdk/revocations). since is raised to one access-token
// lifetime (and the margin) ago: nothing older is in force. Who may:
// user.OpRevocations.
func (s *Manager) Revocations(ctx context.Context, actor user.Actor, since time.Time, after string, limit int) ([]auth.Revocation, error) {
	if err := actor.Authorize(user.OpRevocations, "", ""); err != nil {
		return nil, err
	}
	if len(after) > 64 {
		return nil, user.Invalid(map[string]string{"after": "must be the next_after of a previous page"})
	}
	if limit <= 0 || limit > MaxRevocationsPage {
		limit = MaxRevocationsPage
	}
	now := s.clock.Now()
	if floor := now.Add(-(s.tokens.TTL() + user.RevocationMargin)); since.Before(floor) {
		since = floor
	}
	revs, err := s.store.RevocationsSince(ctx, since, now, after, limit)
	if err != nil {
		return nil, user.StoreErr("list revocations", err)
	}
	return revs, nil
}
