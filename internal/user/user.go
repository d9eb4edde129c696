// Package user is the core of the user service's domain: the user entity and
// its snapshot, the rules of an email, a name, a password and an ID, who may
// do what (Actor), the errors and events, the inputs and results of the use
// cases, and the ports the domain needs from storage, tokens and limits.
// The use cases themselves are flows, one package each below this one
// (profile, session, recovery, serviceaccount), assembled by flows. It
// imports no framework, transport or database driver; those live at the
// edges and adapt to it.
package user

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/token"
)

// Role decides what a user may do to other users.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// Status says whether a user may sign in.
type Status string

const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusDisabled }

// User is the stored user. PasswordHash never leaves the service.
type User struct {
	ID           string
	Email        string // normalised: trimmed and lower-cased
	Name         string
	Role         Role
	Status       Status
	PasswordHash string
	// EmailVerified: the user proved they receive mail at Email (a link
	// from a verification mail).
	EmailVerified bool
	// PendingEmail is an address the user asked to change to; it becomes
	// Email, the login, only once verified. "" = none.
	PendingEmail string
	// SessionVersion is bumped whenever existing sessions must end (password
	// change or reset). Access tokens carry the version they were issued
	// under; Validate rejects older ones. A counter rather than a timestamp
	// because JWT iat has one-second resolution, too coarse to order a reset
	// and a login within the same second.
	SessionVersion int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Snapshot is the public view of a user at one moment: the fields every
// copy of a user outside the database shares. The event payload is a
// Snapshot, and the cache entry and the search document embed one, so a
// new profile field is declared here once instead of in each copy.
//
// The JSON names are a wire and storage format: events in an outbox or a
// queue and entries in Redis are read by other versions of the service, so
// a name must never change meaning. Add fields; do not rename them.
// Snapshot must not get a MarshalJSON method: the types that embed it rely
// on its fields being promoted into their own JSON object.
type Snapshot struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Snapshot returns u's public view. It is the one place that copies the
// shared fields out of a User, so adding one means one line here.
func (u *User) Snapshot() Snapshot {
	return Snapshot{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Status: u.Status,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// Apply copies s's fields onto u, for an edge that rebuilds a User from a
// snapshot plus the fields the snapshot leaves out (the cache entry).
func (s Snapshot) Apply(u *User) {
	u.ID, u.Email, u.Name, u.Role, u.Status = s.ID, s.Email, s.Name, s.Role, s.Status
	u.CreatedAt, u.UpdatedAt = s.CreatedAt, s.UpdatedAt
}

// Input limits. Every string that reaches the store is bounded here.
const (
	MaxEmailLength = 254 // RFC 5321 path limit
	MaxNameLength  = 100 // runes
	// MaxPasswordBytes bounds the password before any hashing or policy work so
	// a huge body cannot burn CPU; the policy's rune limit is stricter.
	MaxPasswordBytes = 1024
	// MaxTokenBytes bounds opaque and JWT tokens accepted from clients.
	MaxTokenBytes = 4096
)

// NormalizeEmail returns the canonical form of an email address, the one
// stored and looked up (see ParseEmail); an address that has none is
// returned trimmed and lower-cased, which matches no stored address.
func NormalizeEmail(email string) string {
	n, problem := ParseEmail(email)
	if problem != "" {
		return strings.ToLower(strings.TrimSpace(email))
	}
	return n
}

// NormalizeName trims surrounding white space.
func NormalizeName(name string) string { return strings.TrimSpace(name) }

// CheckName validates a normalised display name and returns a problem or "".
func CheckName(name string) string {
	switch {
	case name == "":
		return "is required"
	case !utf8.ValidString(name):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(name) > MaxNameLength:
		return "must be at most 100 characters"
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// CheckID validates a user ID (a UUID) and returns a problem or "".
func CheckID(id string) string {
	if id == "" {
		return "is required"
	}
	if len(id) != 36 {
		return "must be a UUID"
	}
	if _, err := uuid.Parse(id); err != nil {
		return "must be a UUID"
	}
	return ""
}

// NewID returns a UUIDv7: not guessable (74 random bits) yet time-ordered,
// so the primary-key index stays append-mostly and ID order is creation
// order, which keyset pagination relies on.
func NewID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// CreateInput is a registration.
type CreateInput struct {
	Email    string
	Password string
	Name     string
	Role     Role // "" = user; only admins and internal callers may set admin
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

// Actor is who asks for an operation, as the service established it from
// a credential it verified itself: a user's access token (ID and Role), a
// service account's (ID and Scopes), or nothing (the zero Actor, anonymous).
// System is the in-process administrator of the CLI (`usersvc admin`); no
// network caller can ever be System.
type Actor struct {
	ID     string
	Role   Role
	System bool
	// ServiceAccount marks a machine caller; Scopes are what its token
	// grants.
	ServiceAccount bool
	Scopes         []Scope
	// SignIn is how and when the sign-in behind a user's access token was
	// made (its amr and auth_time); nil for a caller not authenticated by
	// a user's token (the CLI's SystemActor, in-process callers), whom
	// step-up does not concern.
	SignIn *token.SignIn
}

// RecentSignIn is step-up: a user calling with a token must have signed in
// within window of now and, when hasFactor, with a second factor ("mfa" in
// amr); otherwise ErrReauthenticationRequired. window 0 checks only the
// factor.
func (a Actor) RecentSignIn(now time.Time, window time.Duration, hasFactor bool) error {
	if a.SignIn == nil || a.System || a.ServiceAccount {
		return nil
	}
	if window > 0 && (a.SignIn.AuthTime.IsZero() || now.Sub(a.SignIn.AuthTime) > window) {
		return ErrReauthenticationRequired
	}
	if hasFactor && !slices.Contains(a.SignIn.AMR, token.AMRMFA) {
		return ErrReauthenticationRequired
	}
	return nil
}

// SystemActor is the trusted in-process caller of the admin CLI.
var SystemActor = Actor{System: true}

// Anonymous reports whether no credential was presented.
func (a Actor) Anonymous() bool { return !a.System && a.ID == "" }

func (a Actor) hasScope(sc Scope) bool {
	return a.ServiceAccount && slices.Contains(a.Scopes, sc)
}
