package user

import (
	"context"
	"errors"
)

// CreateInput is a registration.
type CreateInput struct {
	Email    string
	Password string
	Name     string
	Role     Role // "" = user; only admins and internal callers may set admin
}

// Create registers a user. The email's uniqueness is enforced by the store's
// unique index, so two concurrent registrations yield one user and one
// ErrEmailTaken. The address starts unverified and a verification mail
// goes out, except for the System actor (`usersvc admin create`), whose
// operator vouches for it.
//
// With Config.SignupEnumerationSafe a sign-up (anonymous, or by a
// signed-in plain user) returns nil, nil for a new and a taken address
// alike (accepted: the outcome is mailed), after the same work on both
// paths: one password hash, then one transaction that tries the insert. A
// taken address gets a mail to its owner instead of an account. Callers
// who create accounts for others and may list users anyway (admins,
// service accounts with users:write or users:admin) still get the user or
// ErrEmailTaken.
func (s *Service) Create(ctx context.Context, actor Actor, in CreateInput) (*User, error) {
	u, err := s.newUser(ctx, actor, in)
	if err != nil {
		return nil, err
	}
	ev, err := s.newEvent(EventCreated, u.ID)
	if err != nil {
		return nil, err
	}
	ev.User = eventUser(u)
	quiet := s.cfg.SignupEnumerationSafe && !actor.createsForOthers()
	// The owner of a taken address is told at most as often as the reset
	// budget allows, so sign-ups cannot flood their mailbox; the budget is
	// spent on both paths, so its cost tells nothing either.
	notify := quiet && s.allowAttempt(ctx, s.resets, "signup|"+u.Email) == nil
	err = s.store.Atomic(ctx, func(r Repo) error {
		err := r.CreateUser(ctx, u)
		if quiet && errors.Is(err, ErrEmailTaken) {
			if !notify {
				return nil
			}
			return s.signupAttempted(ctx, r, u.Email)
		}
		if err != nil {
			return err
		}
		if !u.EmailVerified {
			if err := s.requestVerification(ctx, r, u, u.Email); err != nil {
				return err
			}
		}
		return appendEvents(ctx, r, ev)
	})
	if err != nil {
		return nil, storeErr("create user", err)
	}
	if quiet {
		return nil, nil
	}
	return u, nil
}

// signupAttempted mails the owner of a taken address that someone tried to
// register it. The failed insert left the transaction usable (a statement
// error rolls back only the statement, in both databases).
func (s *Service) signupAttempted(ctx context.Context, r Repo, email string) error {
	owner, err := r.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) { // deleted in between: nobody to tell
		return nil
	}
	if err != nil {
		return err
	}
	return s.notice(ctx, r, EventSignupAttempted, owner, owner.Email, "")
}

// newUser validates a registration, checks who may create what, and
// builds the user with its password hashed.
func (s *Service) newUser(ctx context.Context, actor Actor, in CreateInput) (*User, error) {
	email, emailProblem := ParseEmail(in.Email)
	name := NormalizeName(in.Name)
	role := in.Role
	if role == "" {
		role = RoleUser
	}
	fields := map[string]string{}
	if emailProblem != "" {
		fields["email"] = emailProblem
	}
	if p := checkName(name); p != "" {
		fields["name"] = p
	}
	if !role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if p := s.checkPassword(in.Password, email); p != "" {
		fields["password"] = p
	}
	if len(fields) > 0 {
		return nil, Invalid(fields)
	}
	if err := actor.mayCreate(); err != nil {
		return nil, err
	}
	if role != RoleUser {
		if err := actor.authorize(OpCreateAdmin, "", ""); err != nil {
			return nil, err
		}
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, Internal("hash password", err)
	}
	id, err := newID()
	if err != nil {
		return nil, Internal("new id", err)
	}
	now := s.clock()
	return &User{ID: id, Email: email, Name: name, Role: role, Status: StatusActive,
		PasswordHash: hash, EmailVerified: actor.System, CreatedAt: now, UpdatedAt: now}, nil
}

// Get returns a user the actor may see (OpRead).
func (s *Service) Get(ctx context.Context, actor Actor, id string) (*User, error) {
	if p := checkID(id); p != "" {
		return nil, Invalid(map[string]string{"id": p})
	}
	if err := actor.allowedBeforeRead(OpRead, id); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, storeErr("get user", err)
	}
	return u, nil
}

// Delete removes a user (OpDelete); their refresh tokens go with them and
// their access tokens stop validating because the user no longer exists.
func (s *Service) Delete(ctx context.Context, actor Actor, id string) error {
	if p := checkID(id); p != "" {
		return Invalid(map[string]string{"id": p})
	}
	if err := actor.allowedBeforeRead(OpDelete, id); err != nil {
		return err
	}
	ev, err := s.newEvent(EventDeleted, id)
	if err != nil {
		return err
	}
	err = s.store.Atomic(ctx, func(r Repo) error {
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
		if err := actor.authorize(OpDelete, id, cur.Role); err != nil {
			return err
		}
		if lastAdmin(admins, id) {
			return ErrLastAdmin
		}
		if err := r.DeleteUser(ctx, id); err != nil {
			return err
		}
		return appendEvents(ctx, r, ev)
	})
	if err != nil {
		return storeErr("delete user", err)
	}
	return nil
}

// lastAdmin reports whether id is the only one of the active admins, whom
// no deletion, disable or demotion may remove: nobody could administer the
// platform any more (an admin can only be made by an admin).
func lastAdmin(activeAdmins []string, id string) bool {
	return len(activeAdmins) == 1 && activeAdmins[0] == id
}
