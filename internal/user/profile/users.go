package profile

import (
	"context"
	"errors"

	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Create registers a user. The email's uniqueness is enforced by the store's
// unique index, so two concurrent registrations yield one user and one
// user.ErrEmailTaken. The address starts unverified and a verification mail
// goes out, except for the System actor (`usersvc admin create`), whose
// operator vouches for it.
//
// With user.Config.SignupEnumerationSafe a sign-up (anonymous, or by a
// signed-in plain user) returns nil, nil for a new and a taken address
// alike (accepted: the outcome is mailed), after the same work on both
// paths: one password hash, then one transaction that tries the insert. A
// taken address gets a mail to its owner instead of an account. Callers
// who create accounts for others and may list users anyway (admins,
// service accounts with users:write or users:admin) still get the user or
// user.ErrEmailTaken.
func (s *Profiles) Create(ctx context.Context, actor user.Actor, in user.CreateInput) (*user.User, error) {
	u, err := s.newUser(ctx, actor, in)
	if err != nil {
		return nil, err
	}
	ev, err := user.NewEvent(user.EventCreated, u.ID, s.clock.Now())
	if err != nil {
		return nil, err
	}
	ev.User = user.EventUserOf(u)
	quiet := s.cfg.SignupEnumerationSafe && !actor.CreatesForOthers()
	// The owner of a taken address is told at most as often as the reset
	// budget allows, so sign-ups cannot flood their mailbox; the budget is
	// spent on both paths, so its cost tells nothing either.
	notify := quiet && user.AllowAttempt(ctx, s.log, s.resets, "signup|"+u.Email) == nil
	err = s.store.Atomic(ctx, func(r user.Repo) error {
		err := r.CreateUser(ctx, u)
		if quiet && errors.Is(err, user.ErrEmailTaken) {
			if !notify {
				return nil
			}
			return s.signupAttempted(ctx, r, u.Email)
		}
		if err != nil {
			return err
		}
		if !u.EmailVerified {
			if err := s.verify.RequestVerification(ctx, r, u, u.Email); err != nil {
				return err
			}
		}
		return user.AppendEvents(ctx, r, ev)
	})
	if err != nil {
		return nil, user.StoreErr("create user", err)
	}
	if quiet {
		return nil, nil
	}
	return u, nil
}

// signupAttempted mails the owner of a taken address that someone tried to
// register it. The failed insert left the transaction usable (a statement
// error rolls back only the statement, in both databases).
func (s *Profiles) signupAttempted(ctx context.Context, r user.Repo, email string) error {
	owner, err := r.UserByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) { // deleted in between: nobody to tell
		return nil
	}
	if err != nil {
		return err
	}
	return s.notice(ctx, r, user.EventSignupAttempted, owner, owner.Email, "")
}

// newUser validates a registration, checks who may create what, and
// builds the user with its password hashed.
func (s *Profiles) newUser(ctx context.Context, actor user.Actor, in user.CreateInput) (*user.User, error) {
	email, emailProblem := user.ParseEmail(in.Email)
	name := user.NormalizeName(in.Name)
	role := in.Role
	if role == "" {
		role = user.RoleUser
	}
	fields := map[string]string{}
	if emailProblem != "" {
		fields["email"] = emailProblem
	}
	if p := user.CheckName(name); p != "" {
		fields["name"] = p
	}
	if !role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if p := user.CheckPassword(s.policy, in.Password, email); p != "" {
		fields["password"] = p
	}
	if len(fields) > 0 {
		return nil, user.Invalid(fields)
	}
	if err := actor.MayCreate(); err != nil {
		return nil, err
	}
	op := user.OpCreate
	if role != user.RoleUser {
		op = user.OpCreateAdmin
		if err := actor.Authorize(op, "", ""); err != nil {
			return nil, err
		}
	}
	if err := s.step.Check(ctx, actor, op, ""); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, user.Internal("hash password", err)
	}
	id, err := user.NewID()
	if err != nil {
		return nil, user.Internal("new id", err)
	}
	now := s.clock.Now()
	return &user.User{ID: id, Email: email, Name: name, Role: role, Status: user.StatusActive,
		PasswordHash: hash, EmailVerified: actor.System, CreatedAt: now, UpdatedAt: now}, nil
}

// Get returns a user the actor may see (user.OpRead).
func (s *Profiles) Get(ctx context.Context, actor user.Actor, id string) (*user.User, error) {
	if p := user.CheckID(id); p != "" {
		return nil, user.Invalid(map[string]string{"id": p})
	}
	if err := actor.AuthorizeBeforeRead(user.OpRead, id); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, user.StoreErr("get user", err)
	}
	return u, nil
}

// Delete removes a user (user.OpDelete); their refresh tokens go with them and
// their access tokens stop validating because the user no longer exists.
func (s *Profiles) Delete(ctx context.Context, actor user.Actor, id string) error {
	if p := user.CheckID(id); p != "" {
		return user.Invalid(map[string]string{"id": p})
	}
	if err := actor.AuthorizeBeforeRead(user.OpDelete, id); err != nil {
		return err
	}
	if err := s.step.Check(ctx, actor, user.OpDelete, id); err != nil {
		return err
	}
	ev, err := user.NewEvent(user.EventDeleted, id, s.clock.Now())
	if err != nil {
		return err
	}
	err = s.store.Atomic(ctx, func(r user.Repo) error {
		admins, err := r.LockActiveAdmins(ctx)
		if err != nil {
			return err
		}
		cur, err := r.LockUser(ctx, id)
		if err != nil {
			return err
		}
		// Decided again on the locked row: a target promoted since the
		// check above is out of a users:write account's reach now.
		if err := actor.Authorize(user.OpDelete, id, cur.Role); err != nil {
			return err
		}
		if lastAdmin(admins, id) {
			return user.ErrLastAdmin
		}
		if err := r.DeleteUser(ctx, id); err != nil {
			return err
		}
		if err := user.RevokeUserTokens(ctx, r, auth.ReasonDeleted, cur, false, s.clock.Now(), s.cfg.AccessTTL); err != nil {
			return err
		}
		return user.AppendEvents(ctx, r, ev)
	})
	if err != nil {
		return user.StoreErr("delete user", err)
	}
	return nil
}

// lastAdmin reports whether id is the only one of the active admins, whom
// no deletion, disable or demotion may remove: nobody could administer the
// platform any more (an admin can only be made by an admin).
func lastAdmin(activeAdmins []string, id string) bool {
	return len(activeAdmins) == 1 && activeAdmins[0] == id
}

// notice writes a token-less mail event about u to address to.
func (s *Profiles) notice(ctx context.Context, r user.Repo, t user.EventType, u *user.User, to, newEmail string) error {
	ev, err := user.NewEvent(t, u.ID, s.clock.Now())
	if err != nil {
		return err
	}
	ev.Notice = &user.EventNotice{Email: to, Name: u.Name, NewEmail: newEmail}
	return user.AppendEvents(ctx, r, ev)
}
