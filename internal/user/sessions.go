package user

import (
	"context"
	"time"
)

// SessionInfo is one live session of a user: a refresh-token family that
// still holds a token that can be used.
type SessionInfo struct {
	// ID is the family ID, the "sid" of the session's access tokens.
	ID string
	// StartedAt is the sign-in; LastUsedAt the newest refresh (or the
	// sign-in when there was none).
	StartedAt, LastUsedAt time.Time
	// ExpiresAt is when the session ends unless refreshed.
	ExpiresAt time.Time
}

// MaxSessionsListed bounds Sessions: a user with more live sessions than
// this sees the newest ones.
const MaxSessionsListed = 100

// Sessions lists the live sessions of the user with id, newest first
// (OpSessions: the user themself, admins, and service accounts whose scope
// reaches the user; not a read-only one: sessions are how an account is
// used, not its profile).
func (s *Service) Sessions(ctx context.Context, actor Actor, id string) ([]SessionInfo, error) {
	if p := checkID(id); p != "" {
		return nil, Invalid(map[string]string{"id": p})
	}
	if err := actor.allowedBeforeRead(OpSessions, id); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, storeErr("get user", err)
	}
	if err := actor.authorize(OpSessions, id, u.Role); err != nil {
		return nil, err
	}
	out, err := s.store.UserSessions(ctx, id, s.clock(), MaxSessionsListed)
	if err != nil {
		return nil, storeErr("list sessions", err)
	}
	return out, nil
}

// EndSessions signs the user with id out everywhere: the session version
// is bumped, so every access token already issued stops validating at
// once on every instance, and every refresh token is revoked (OpSessions,
// as listing them). It is recorded as an update whose changed field
// is "sessions".
func (s *Service) EndSessions(ctx context.Context, actor Actor, id string) error {
	if p := checkID(id); p != "" {
		return Invalid(map[string]string{"id": p})
	}
	if err := actor.allowedBeforeRead(OpSessions, id); err != nil {
		return err
	}
	ev, err := s.newEvent(EventUpdated, id)
	if err != nil {
		return err
	}
	now := s.clock()
	err = s.store.Atomic(ctx, func(r Repo) error {
		cur, err := r.LockUser(ctx, id)
		if err != nil {
			return err
		}
		if err := actor.authorize(OpSessions, id, cur.Role); err != nil {
			return err
		}
		cur.SessionVersion++
		cur.UpdatedAt = now
		if err := r.UpdateUser(ctx, cur); err != nil {
			return err
		}
		if err := r.RevokeUserRefreshTokens(ctx, id, now); err != nil {
			return err
		}
		ev.User, ev.Changed = eventUser(cur), []string{"sessions"}
		return appendEvents(ctx, r, ev)
	})
	if err != nil {
		return storeErr("end sessions", err)
	}
	return nil
}
