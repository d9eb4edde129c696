package user

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/token"
)

// Config holds the service's tunable rules.
type Config struct {
	DefaultPageSize int           // default 20
	MaxPageSize     int           // default 100
	RefreshTTL      time.Duration // default 30 days
	ResetTTL        time.Duration // default 30 minutes
}

func (c *Config) setDefaults() {
	if c.DefaultPageSize <= 0 {
		c.DefaultPageSize = 20
	}
	if c.MaxPageSize <= 0 {
		c.MaxPageSize = 100
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.ResetTTL <= 0 {
		c.ResetTTL = 30 * time.Minute
	}
}

// Deps are the ports the service is built from.
type Deps struct {
	Store  Store
	Hasher PasswordHasher
	Policy PasswordPolicy
	Tokens AccessTokens
	// Denylist of logged-out access tokens; nil means logout ends only the
	// refresh-token family and access tokens live out their short TTL.
	Denylist Denylist
	// PasswordAttempts bounds password attempts per account — sign-ins and
	// current-password checks alike, one budget — so a stolen access token
	// cannot guess the password through Update faster than a login can;
	// nil means unlimited (the API's per-IP limits still apply).
	PasswordAttempts Limiter
	// Searcher answers List's text queries; nil means a prefix match on
	// email and name in the database.
	Searcher Searcher
	Logger   *slog.Logger     // nil = slog.Default()
	Now      func() time.Time // nil = time.Now
}

// Service implements every use case of the user service.
type Service struct {
	store  Store
	hasher PasswordHasher
	policy PasswordPolicy
	tokens AccessTokens
	deny   Denylist
	tries  Limiter
	search Searcher
	log    *slog.Logger
	now    func() time.Time
	cfg    Config
	// dummyHash is verified when Auth finds no user, so a login for an
	// unknown email costs one hash like any other and timing reveals nothing.
	dummyHash string
}

// NewService checks the dependencies and prepares the dummy hash.
func NewService(d Deps, cfg Config) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Policy == nil || d.Tokens == nil {
		return nil, errors.New("user: NewService needs Store, Hasher, Policy and Tokens")
	}
	cfg.setDefaults()
	if cfg.DefaultPageSize > cfg.MaxPageSize {
		return nil, fmt.Errorf("user: default page size %d exceeds max page size %d", cfg.DefaultPageSize, cfg.MaxPageSize)
	}
	s := &Service{store: d.Store, hasher: d.Hasher, policy: d.Policy, tokens: d.Tokens, deny: d.Denylist, tries: d.PasswordAttempts, search: d.Searcher,
		log: d.Logger, now: d.Now, cfg: cfg}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var seed [16]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("user: dummy password: %w", err)
	}
	h, err := s.hasher.Hash(context.Background(), base64.RawURLEncoding.EncodeToString(seed[:]))
	if err != nil {
		return nil, fmt.Errorf("user: dummy hash: %w", err)
	}
	s.dummyHash = h
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// Store returns the store the service was built on (for metrics).
func (s *Service) Store() Store { return s.store }

// checkPassword applies the byte bound and the policy; it returns a field
// problem or "".
func (s *Service) checkPassword(pw, email string) string {
	if pw == "" {
		return "is required"
	}
	if len(pw) > MaxPasswordBytes {
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	}
	if err := s.policy.Check(pw, email); err != nil {
		var pe *password.PolicyError
		if errors.As(err, &pe) {
			return pe.Reason
		}
		return err.Error()
	}
	return ""
}

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

// ListInput selects a page: by Page/PageSize, or after Cursor.
type ListInput struct {
	Page     int
	PageSize int
	Cursor   string
	Query    string
	Role     Role
	Status   Status
}

// Page is one page of users.
type Page struct {
	Users []*User
	// Total counts every user matching the filters; -1 on cursor pages,
	// where counting would cost a scan of every match on each deep page.
	Total      int64
	Page       int
	PageSize   int
	NextCursor string
}

// MaxPage bounds offset pagination: deep offsets cost a scan of every
// skipped row, which is what the cursor is for.
const MaxPage = 10000

// MaxQueryLength bounds the search prefix.
const MaxQueryLength = 100

// List returns a page of users (admins only), ordered by ID, which is
// creation order. With a cursor the store seeks straight to the page
// (keyset) and skips the count, so deep pages cost the same as the first.
func (s *Service) List(ctx context.Context, actor Actor, in ListInput) (*Page, error) {
	if !actor.mayList() {
		return nil, Forbidden("only an admin may list users")
	}
	fields := map[string]string{}
	size := in.PageSize
	switch {
	case size == 0:
		size = s.cfg.DefaultPageSize
	case size < 0 || size > s.cfg.MaxPageSize:
		fields["page_size"] = fmt.Sprintf("must be between 1 and %d", s.cfg.MaxPageSize)
	}
	page := in.Page
	switch {
	case page == 0:
		page = 1
	case page < 0 || page > MaxPage:
		fields["page"] = fmt.Sprintf("must be between 1 and %d; use the cursor for deeper pages", MaxPage)
	}
	q := strings.TrimSpace(in.Query)
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > MaxQueryLength {
		fields["q"] = fmt.Sprintf("must be valid UTF-8 of at most %d characters", MaxQueryLength)
	}
	if in.Role != "" && !in.Role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if in.Status != "" && !in.Status.Valid() {
		fields["status"] = "must be active or disabled"
	}
	var after, searchAfter string
	if in.Cursor != "" {
		kind, v, ok := decodeCursor(in.Cursor)
		if !ok {
			fields["cursor"] = "is not a cursor this service issued"
		}
		if kind == searchCursorPrefix {
			searchAfter = v
		} else {
			after = v
		}
	}
	useSearch := s.search != nil && q != ""
	if useSearch && page > 1 && in.Cursor == "" {
		fields["page"] = "search results are paged with the cursor only"
	}
	if len(fields) > 0 {
		return nil, Invalid(fields)
	}
	if useSearch {
		p, err := s.searchList(ctx, q, in, size, searchAfter)
		if err == nil {
			return p, nil
		}
		// The index is a derived view; the database can still answer.
		s.log.WarnContext(ctx, "search unavailable, listing from the database", "error", err)
		if searchAfter != "" {
			return nil, Invalid(map[string]string{"cursor": "the search this cursor belongs to is unavailable; start again"})
		}
	}
	lq := ListQuery{Prefix: strings.ToLower(q), Role: in.Role, Status: in.Status, AfterID: after, Limit: size + 1,
		SkipTotal: after != ""}
	if after == "" {
		lq.Offset = (page - 1) * size
	}
	users, total, err := s.store.ListUsers(ctx, lq)
	if err != nil {
		return nil, storeErr("list users", err)
	}
	out := &Page{Users: users, Total: total, Page: page, PageSize: size}
	if after != "" {
		out.Page = 0 // a cursor page has no number
	}
	if len(users) > size {
		out.Users = users[:size]
		out.NextCursor = encodeCursor(idCursorPrefix, users[size-1].ID)
	}
	return out, nil
}

// searchList answers a text query from the search index and reads the
// users from the store; IDs the index still knows but the store no longer
// does (a deletion not yet indexed) are left out.
func (s *Service) searchList(ctx context.Context, q string, in ListInput, size int, after string) (*Page, error) {
	res, err := s.search.SearchUsers(ctx, SearchQuery{Text: q, Role: in.Role, Status: in.Status, Limit: size, After: after})
	if err != nil {
		return nil, err
	}
	out := &Page{Users: make([]*User, 0, len(res.IDs)), Total: res.Total, Page: 1, PageSize: size}
	if after != "" {
		out.Page = 0
	}
	for _, id := range res.IDs {
		u, err := s.store.UserByID(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, storeErr("get user", err)
		}
		out.Users = append(out.Users, u)
	}
	if res.Next != "" {
		out.NextCursor = encodeCursor(searchCursorPrefix, res.Next)
	}
	return out, nil
}

// Cursor kinds: a keyset position in ID order, or a search index's own
// cursor.
const (
	idCursorPrefix     = "u1:"
	searchCursorPrefix = "s1:"
)

// encodeCursor makes an opaque cursor. It is opaque so the encoding can
// change; it holds nothing secret.
func encodeCursor(kind, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + v))
}

func decodeCursor(c string) (kind, v string, ok bool) {
	if len(c) > 512 {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	if id, ok := strings.CutPrefix(string(b), idCursorPrefix); ok && checkID(id) == "" {
		return idCursorPrefix, id, true
	}
	if v, ok := strings.CutPrefix(string(b), searchCursorPrefix); ok && v != "" && utf8.ValidString(v) {
		return searchCursorPrefix, v, true
	}
	return "", "", false
}

// UpdateInput holds the fields to change; nil leaves a field as it is.
type UpdateInput struct {
	Name            *string
	Email           *string
	Password        *string
	CurrentPassword *string
	Role            *Role
	Status          *Status
}

// Update changes a user. Users may change their own name, and their email
// or password when they also give their current password (so a stolen access
// token alone cannot take the account over). Admins may change anyone's
// fields, role and status, except their own role and status, so the last
// admin cannot lock everyone out by accident. A password change ends every
// existing session.
func (s *Service) Update(ctx context.Context, actor Actor, id string, in UpdateInput) (*User, error) {
	if p := checkID(id); p != "" {
		return nil, Invalid(map[string]string{"id": p})
	}
	if !actor.mayAccess(id) {
		return nil, Forbidden("you may only change your own user")
	}
	self := !actor.System && actor.ID == id
	if (in.Role != nil || in.Status != nil) && (!actor.isAdmin() || self) {
		if self && actor.isAdmin() {
			return nil, Forbidden("an admin may not change their own role or status")
		}
		return nil, Forbidden("only an admin may change role or status")
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, storeErr("get user", err)
	}
	next := *u
	fields := map[string]string{}
	if in.Name != nil {
		next.Name = NormalizeName(*in.Name)
		if p := checkName(next.Name); p != "" {
			fields["name"] = p
		}
	}
	if in.Email != nil {
		var p string
		if next.Email, p = ParseEmail(*in.Email); p != "" {
			fields["email"] = p
		}
	}
	if in.Password != nil {
		if p := s.checkPassword(*in.Password, next.Email); p != "" {
			fields["password"] = p
		}
	}
	if in.Role != nil && !in.Role.Valid() {
		fields["role"] = "must be user or admin"
	}
	if in.Status != nil && !in.Status.Valid() {
		fields["status"] = "must be active or disabled"
	}
	sensitive := (in.Email != nil && next.Email != u.Email) || in.Password != nil
	if self && sensitive && (in.CurrentPassword == nil || *in.CurrentPassword == "") {
		fields["current_password"] = "is required to change email or password"
	}
	if len(fields) > 0 {
		return nil, Invalid(fields)
	}
	if self && sensitive {
		if err := s.verifyCurrent(ctx, u, *in.CurrentPassword); err != nil {
			return nil, err
		}
	}
	var hash string
	if in.Password != nil {
		if hash, err = s.hasher.Hash(ctx, *in.Password); err != nil {
			return nil, Internal("hash password", err)
		}
	}
	now := s.clock()
	var out *User
	// The checks above ran on a snapshot, outside any transaction, because
	// hashing is slow. The write re-reads the row under a lock and applies
	// only the requested fields, so a concurrent change (a password reset,
	// an admin disabling the user) is never overwritten with stale values.
	err = s.store.Atomic(ctx, func(r Repo) error {
		var admins []string
		if in.Role != nil || in.Status != nil {
			// Before the user's row: every admin removal takes the locks in
			// this order, so two of them queue instead of deadlocking.
			if admins, err = r.LockActiveAdmins(ctx); err != nil {
				return err
			}
		}
		cur, err := r.LockUser(ctx, id)
		if err != nil {
			return err
		}
		if (in.Role != nil && *in.Role != RoleAdmin || in.Status != nil && *in.Status != StatusActive) &&
			lastAdmin(admins, cur.ID) {
			return ErrLastAdmin
		}
		sessionVersion := cur.SessionVersion
		if self && sensitive && cur.PasswordHash != u.PasswordHash {
			return Invalid(map[string]string{"current_password": "is no longer current; the password changed meanwhile"})
		}
		var changed []string
		set := func(field string, differs bool, apply func()) {
			if differs {
				apply()
				changed = append(changed, field)
			}
		}
		set("name", in.Name != nil && cur.Name != next.Name, func() { cur.Name = next.Name })
		set("email", in.Email != nil && cur.Email != next.Email, func() { cur.Email = next.Email })
		set("role", in.Role != nil && cur.Role != *in.Role, func() { cur.Role = *in.Role })
		set("status", in.Status != nil && cur.Status != *in.Status, func() {
			cur.Status = *in.Status
			if cur.Status == StatusDisabled {
				// A disabled account's sessions end, as with a password
				// change: enabling it again must not revive them.
				cur.SessionVersion++
			}
		})
		set("password", in.Password != nil, func() {
			cur.PasswordHash = hash
			cur.SessionVersion++
		})
		cur.UpdatedAt = now
		if err := r.UpdateUser(ctx, cur); err != nil {
			return err
		}
		out = cur
		if len(changed) == 0 {
			return nil
		}
		var evs []Event
		upd, err := s.newEvent(EventUpdated, id)
		if err != nil {
			return err
		}
		upd.User, upd.Changed = eventUser(cur), changed
		evs = append(evs, upd)
		if slices.ContainsFunc(changed, endsReset) {
			if err := r.DeleteUserPasswordResets(ctx, id); err != nil {
				return err
			}
		}
		if cur.SessionVersion != sessionVersion {
			if err := r.RevokeUserRefreshTokens(ctx, id, now); err != nil {
				return err
			}
		}
		if in.Password != nil {
			pc, err := s.newEvent(EventPasswordChanged, id)
			if err != nil {
				return err
			}
			evs = append(evs, pc)
		}
		return appendEvents(ctx, r, evs...)
	})
	if err != nil {
		return nil, storeErr("update user", err)
	}
	return out, nil
}

// endsReset reports whether a change of field ends the user's open password
// reset: a new address means the mail went to someone who may no longer own
// the account; a new password, status or role means the account's owner or
// an admin has decided about it since the reset was asked for.
func endsReset(field string) bool {
	return field == "email" || field == "password" || field == "status" || field == "role"
}

func (s *Service) verifyCurrent(ctx context.Context, u *User, current string) error {
	if err := s.allowPasswordAttempt(ctx, u.Email); err != nil {
		return err
	}
	if len(current) > MaxPasswordBytes {
		return Invalid(map[string]string{"current_password": "is incorrect"})
	}
	ok, _, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil {
		return Internal("verify password", err)
	}
	if !ok {
		return Invalid(map[string]string{"current_password": "is incorrect"})
	}
	return nil
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

// storeErr passes domain errors from the store through and wraps the rest
// as internal.
func storeErr(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return Internal(op, err)
}

// isTokenErr reports whether err is a token verification failure (bad input
// from the client, not a server fault).
func isTokenErr(err error) bool { return errors.Is(err, token.ErrInvalidToken) }
