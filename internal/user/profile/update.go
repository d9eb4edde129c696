package profile

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Update changes a user, as far as the caller's credential reaches
// (authz.go: user.OpProfile for the name, user.OpCredentials for email and password,
// user.OpRoleStatus for role and status). Users may change their own name, and
// their email or password when they also give their current password (so a
// stolen access token alone cannot take the account over). A new email does
// not replace the address at once, whoever asks: it becomes the pending
// email, a verification goes to it and a notice to the current address, and
// it becomes the login once verified (VerifyEmail). Admins may change
// anyone's fields, role and status, except their own role and status, and
// nobody may remove the last active admin. A role change drops a pending
// email, so an address asked for under one role is never verified into an
// account of another. A password change or a disable ends every
// existing session; a change of email, password, status or role ends an
// open password reset.
//
// It runs in two steps: planUpdate decides, without I/O, what the request
// means for the user as read (validation, permissions, whether the current
// password is needed); then, after the slow work (verifying the current
// password, hashing the new one) outside any transaction, applyUpdate
// writes the plan in one transaction on the row as it is then.
func (s *Profiles) Update(ctx context.Context, actor user.Actor, id string, in user.UpdateInput) (*user.User, error) {
	ops := user.UpdateOps(in)
	if p := user.CheckID(id); p != "" {
		return nil, user.Invalid(map[string]string{"id": p})
	}
	if err := actor.AuthorizeAll(ops, id, user.RoleUser); err != nil {
		return nil, err
	}
	if err := s.step.CheckAll(ctx, actor, ops, id); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, user.StoreErr("get user", err)
	}
	if err := actor.AuthorizeAll(ops, id, u.Role); err != nil {
		return nil, err
	}
	p, err := planUpdate(actor, u, in, func(pw, email string) string { return user.CheckPassword(s.policy, pw, email) })
	if err != nil {
		return nil, err
	}
	p.hideTaken = s.cfg.SignupEnumerationSafe && !actor.CreatesForOthers()
	if p.needCurrent {
		if err := s.verifyCurrent(ctx, u, *in.CurrentPassword); err != nil {
			return nil, err
		}
	}
	var hash string
	if p.password != nil {
		if hash, err = s.hasher.Hash(ctx, *p.password); err != nil {
			return nil, user.Internal("hash password", err)
		}
	}
	return s.applyUpdate(ctx, p, hash)
}

// updatePlan is what an update will do, decided from the user as read.
type updatePlan struct {
	id string
	// actor and ops are who asked and what for, decided again on the row
	// as locked.
	actor  user.Actor
	ops    []user.Op
	name   *string // normalised; nil = unchanged
	email  *string // canonical; nil = unchanged
	role   *user.Role
	status *user.Status
	// password is the new password to hash; nil = unchanged.
	password *string
	// needCurrent: the user changes their own email or password, so the
	// current password must be verified, against readHash, the hash as read.
	needCurrent bool
	readHash    string
	// hideTaken: a new address another account has is accepted as pending
	// like any other, and its owner told, instead of user.ErrEmailTaken, so the
	// change cannot tell the caller who is registered
	// (user.Config.SignupEnumerationSafe, for callers who may not list users).
	hideTaken bool
}

// planUpdate validates in against u, the user as read, and returns the plan.
// It does no I/O; checkPassword is the password policy.
func planUpdate(actor user.Actor, u *user.User, in user.UpdateInput, checkPassword func(pw, email string) string) (updatePlan, error) {
	p := updatePlan{id: u.ID, actor: actor, ops: user.UpdateOps(in), role: in.Role, status: in.Status, password: in.Password, readHash: u.PasswordHash}
	fields := map[string]string{}
	if in.Name != nil {
		n := user.NormalizeName(*in.Name)
		if problem := user.CheckName(n); problem != "" {
			fields["name"] = problem
		}
		p.name = &n
	}
	email := u.Email
	if in.Email != nil {
		e, problem := user.ParseEmail(*in.Email)
		if problem != "" {
			fields["email"] = problem
		}
		email, p.email = e, &e
	}
	if in.Password != nil {
		if problem := checkPassword(*in.Password, email); problem != "" {
			fields["password"] = problem
		}
	}
	if in.Role != nil && !in.Role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if in.Status != nil && !in.Status.Valid() {
		fields["status"] = "must be active or disabled"
	}
	self := !actor.System && actor.ID == u.ID
	p.needCurrent = self && (email != u.Email || in.Password != nil)
	if p.needCurrent && (in.CurrentPassword == nil || *in.CurrentPassword == "") {
		fields["current_password"] = "is required to change email or password"
	}
	if len(fields) > 0 {
		return updatePlan{}, user.Invalid(fields)
	}
	return p, nil
}

// removesAdmin reports whether the plan could take an active admin away.
func (p updatePlan) removesAdmin() bool {
	return p.role != nil && *p.role != user.RoleAdmin || p.status != nil && *p.status != user.StatusActive
}

// applyTo sets the planned fields on cur (the row as locked) and returns
// the names of those that changed. hash is the new password's.
func (p updatePlan) applyTo(cur *user.User, hash string, now time.Time) []string {
	var changed []string
	set := func(field string, differs bool, apply func()) {
		if differs {
			apply()
			changed = append(changed, field)
		}
	}
	set("name", p.name != nil && cur.Name != *p.name, func() { cur.Name = *p.name })
	if p.email != nil {
		// Asking for the current address again cancels a pending change;
		// asking for the pending one again mails a new verification.
		pending := *p.email
		if pending == cur.Email {
			pending = ""
		}
		set("pending_email", cur.PendingEmail != pending || pending != "", func() { cur.PendingEmail = pending })
	}
	set("role", p.role != nil && cur.Role != *p.role, func() { cur.Role = *p.role })
	if slices.Contains(changed, "role") && cur.PendingEmail != "" && p.email == nil {
		// Its verification link no longer matches, so it cannot complete.
		cur.PendingEmail = ""
		changed = append(changed, "pending_email")
	}
	set("status", p.status != nil && cur.Status != *p.status, func() {
		cur.Status = *p.status
		if cur.Status == user.StatusDisabled {
			// A disabled account's sessions end, as with a password
			// change: enabling it again must not revive them.
			cur.SessionVersion++
		}
	})
	set("password", p.password != nil, func() {
		cur.PasswordHash = hash
		cur.SessionVersion++
	})
	cur.UpdatedAt = now
	return changed
}

// applyUpdate writes the plan in one transaction. The plan was made on a
// snapshot, outside any transaction, because hashing is slow; here the row
// is re-read under a lock and only the planned fields are applied, so a
// concurrent change (a password reset, an admin disabling the user) is never
// overwritten with stale values.
func (s *Profiles) applyUpdate(ctx context.Context, p updatePlan, hash string) (*user.User, error) {
	now := s.clock.Now()
	var out *user.User
	err := s.store.Atomic(ctx, func(r user.Repo) error {
		var admins []string
		if p.role != nil || p.status != nil {
			// Before the user's row: every admin removal takes the locks in
			// this order, so two of them queue instead of deadlocking.
			var err error
			if admins, err = r.LockActiveAdmins(ctx); err != nil {
				return err
			}
		}
		cur, err := r.LockUser(ctx, p.id)
		if err != nil {
			return err
		}
		// The target may have been promoted since it was read: a
		// users:write account's reach ends at plain users.
		if err := p.actor.AuthorizeAll(p.ops, cur.ID, cur.Role); err != nil {
			return err
		}
		if p.removesAdmin() && lastAdmin(admins, cur.ID) {
			return user.ErrLastAdmin
		}
		if p.needCurrent && cur.PasswordHash != p.readHash {
			return user.Invalid(map[string]string{"current_password": "is no longer current; the password changed meanwhile"})
		}
		sessionVersion := cur.SessionVersion
		changed := p.applyTo(cur, hash, now)
		if err := r.UpdateUser(ctx, cur); err != nil {
			return err
		}
		out = cur
		if len(changed) == 0 {
			return nil
		}
		return s.afterUpdate(ctx, r, p, cur, changed, cur.SessionVersion != sessionVersion, now)
	})
	if err != nil {
		return nil, user.StoreErr("update user", err)
	}
	return out, nil
}

// afterUpdate does, in the update's transaction, what the changes entail:
// the open reset ends, the refresh tokens of ended sessions are revoked,
// and the events are written.
func (s *Profiles) afterUpdate(ctx context.Context, r user.Repo, p updatePlan, cur *user.User, changed []string, sessionsEnded bool, now time.Time) error {
	if slices.ContainsFunc(changed, endsReset) {
		if err := r.DeleteUserPasswordResets(ctx, cur.ID); err != nil {
			return err
		}
	}
	if slices.Contains(changed, "pending_email") && cur.PendingEmail != "" {
		if err := s.requestEmailChange(ctx, r, cur, p.hideTaken); err != nil {
			return err
		}
	}
	if sessionsEnded {
		if err := r.RevokeUserRefreshTokens(ctx, cur.ID, now); err != nil {
			return err
		}
	}
	if err := s.revokeTokens(ctx, r, cur, changed, sessionsEnded, now); err != nil {
		return err
	}
	upd, err := user.NewEvent(user.EventUpdated, cur.ID, s.clock.Now())
	if err != nil {
		return err
	}
	upd.User, upd.Changed = user.EventUserOf(cur), changed
	evs := []user.Event{upd}
	if slices.Contains(changed, "password") {
		pc, err := user.NewEvent(user.EventPasswordChanged, cur.ID, s.clock.Now())
		if err != nil {
			return err
		}
		evs = append(evs, pc)
	}
	return user.AppendEvents(ctx, r, evs...)
}

// requestEmailChange mails a verification to cur's pending address and a
// notice to its current one. An address another account has is refused
// now, as a direct change was before pending addresses (user.ErrEmailTaken);
// the unique index decides again when the change is verified. With
// hideTaken it is accepted as pending instead, answering exactly as for a
// free address: no verification goes out (it could never complete), and
// the address's owner is told someone tried to use it, within the same
// per-address budget as a sign-up with it.
func (s *Profiles) requestEmailChange(ctx context.Context, r user.Repo, cur *user.User, hideTaken bool) error {
	owner, err := r.UserByEmail(ctx, cur.PendingEmail)
	switch {
	case err == nil && !hideTaken:
		return user.ErrEmailTaken
	case err == nil:
		if user.AllowAttempt(ctx, s.log, s.resets, "signup|"+owner.Email) == nil {
			if err := s.notice(ctx, r, user.EventSignupAttempted, owner, owner.Email, ""); err != nil {
				return err
			}
		}
	case !errors.Is(err, user.ErrNotFound):
		return err
	default:
		if err := s.verify.RequestVerification(ctx, r, cur, cur.PendingEmail); err != nil {
			return err
		}
	}
	return s.notice(ctx, r, user.EventEmailChangeRequested, cur, cur.Email, cur.PendingEmail)
}

// endsReset reports whether a change of field ends the user's open password
// reset: a new (or newly asked-for) address means the mail went to someone
// who may no longer own the account; a new password, status or role means the account's owner or
// an admin has decided about it since the reset was asked for.
func endsReset(field string) bool {
	return field == "email" || field == "pending_email" || field == "password" || field == "status" || field == "role"
}

// verifyCurrent checks the current password a user gives to change their
// email or password; it spends one attempt of the account's budget.
func (s *Profiles) verifyCurrent(ctx context.Context, u *user.User, current string) error {
	if err := user.AllowAttempt(ctx, s.log, s.tries, "password|"+u.Email); err != nil {
		return err
	}
	if len(current) > user.MaxPasswordBytes {
		return user.Invalid(map[string]string{"current_password": "is incorrect"})
	}
	ok, _, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil {
		return user.Internal("verify password", err)
	}
	if !ok {
		return user.Invalid(map[string]string{"current_password": "is incorrect"})
	}
	return nil
}

// revokeTokens tells other services, with the update, to stop honouring
// the user's older tokens: all of them when the sessions ended (a new
// password, a disabled account), or, for a role change, those carrying the
// old role.
func (s *Profiles) revokeTokens(ctx context.Context, r user.Repo, cur *user.User, changed []string, sessionsEnded bool, now time.Time) error {
	switch {
	case sessionsEnded && slices.Contains(changed, "password"):
		return user.RevokeUserTokens(ctx, r, auth.ReasonPasswordChanged, cur, true, now, s.cfg.AccessTTL)
	case sessionsEnded:
		return user.RevokeUserTokens(ctx, r, auth.ReasonDisabled, cur, true, now, s.cfg.AccessTTL)
	case slices.Contains(changed, "role"):
		return user.RevokeUserTokens(ctx, r, auth.ReasonRoleChanged, cur, false, now, s.cfg.AccessTTL)
	}
	return nil
}
