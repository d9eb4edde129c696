package user

import "context"

// CreateInput is a registration.
type CreateInput struct {
	Email    string
	Password string
	Name     string
	Role     Role // "" = user; only admins and internal callers may set admin
}

// Create registers a user. The email's uniqueness is enforced by the store's
// unique index, so two concurrent registrations yield one user and one
// ErrEmailTaken.
func (s *Service) Create(ctx context.Context, actor Actor, in CreateInput) (*User, error) {
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
	if role != RoleUser && !actor.isAdmin() {
		return nil, Forbidden("only an admin may create an admin")
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
	u := &User{ID: id, Email: email, Name: name, Role: role, Status: StatusActive,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	ev, err := s.newEvent(EventCreated, u.ID)
	if err != nil {
		return nil, err
	}
	ev.User = eventUser(u)
	err = s.store.Atomic(ctx, func(r Repo) error {
		if err := r.CreateUser(ctx, u); err != nil {
			return err
		}
		return appendEvents(ctx, r, ev)
	})
	if err != nil {
		return nil, storeErr("create user", err)
	}
	return u, nil
}

// Get returns a user the actor may see.
func (s *Service) Get(ctx context.Context, actor Actor, id string) (*User, error) {
	if p := checkID(id); p != "" {
		return nil, Invalid(map[string]string{"id": p})
	}
	if !actor.mayRead(id) {
		return nil, Forbidden("you may only read your own user")
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, storeErr("get user", err)
	}
	return u, nil
}

// Delete removes a user; their refresh tokens go with them and their access
// tokens stop validating because the user no longer exists.
func (s *Service) Delete(ctx context.Context, actor Actor, id string) error {
	if p := checkID(id); p != "" {
		return Invalid(map[string]string{"id": p})
	}
	if !actor.mayAccess(id) {
		return Forbidden("you may only delete your own user")
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
