package session

import (
	"context"

	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Sessions lists the live sessions of the user with id, newest first
// (OpSessions: the user themself, admins, and service accounts whose scope
// reaches the user; not a read-only one: sessions are how an account is
// used, not its profile).
func (s *Manager) Sessions(ctx context.Context, actor user.Actor, id string) ([]user.SessionInfo, error) {
	if p := user.CheckID(id); p != "" {
		return nil, user.Invalid(map[string]string{"id": p})
	}
	if err := actor.AuthorizeBeforeRead(user.OpSessions, id); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, user.StoreErr("get user", err)
	}
	if err := actor.Authorize(user.OpSessions, id, u.Role); err != nil {
		return nil, err
	}
	out, err := s.store.UserSessions(ctx, id, s.clock.Now(), user.MaxSessionsListed)
	if err != nil {
		return nil, user.StoreErr("list sessions", err)
	}
	return out, nil
}

// EndSessions signs the user with id out everywhere: the session version
// is bumped, so every access token already issued stops validating at
// once on every instance, and every refresh token is revoked (user.OpSessions,
// as listing them). It is recorded as an update whose changed field
// is "sessions".
func (s *Manager) EndSessions(ctx context.Context, actor user.Actor, id string) error {
	if p := user.CheckID(id); p != "" {
		return user.Invalid(map[string]string{"id": p})
	}
	if err := actor.AuthorizeBeforeRead(user.OpSessions, id); err != nil {
		return err
	}
	if err := s.step.Check(ctx, actor, user.OpSessions, id); err != nil {
		return err
	}
	ev, err := user.NewEvent(user.EventUpdated, id, s.clock.Now())
	if err != nil {
		return err
	}
	now := s.clock.Now()
	err = s.store.Atomic(ctx, func(r user.Repo) error {
		cur, err := r.LockUser(ctx, id)
		if err != nil {
			return err
		}
		if err := actor.Authorize(user.OpSessions, id, cur.Role); err != nil {
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
		if err := user.RevokeUserTokens(ctx, r, auth.ReasonSessionsEnded, cur, true, now, s.cfg.AccessTTL); err != nil {
			return err
		}
		ev.User, ev.Changed = user.EventUserOf(cur), []string{"sessions"}
		return user.AppendEvents(ctx, r, ev)
	})
	if err != nil {
		return user.StoreErr("end sessions", err)
	}
	return nil
}
