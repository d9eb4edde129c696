package user

import (
	"context"
	"time"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Repo is the storage the domain needs. Implementations return ErrNotFound
// and ErrEmailTaken (from this package) for those cases and wrap everything
// else with context. Times are stored and returned in UTC with at least
// microsecond precision.
type Repo interface {
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	// LockUser is UserByID that locks the row until the transaction ends
	// (use inside Atomic for read-modify-write).
	LockUser(ctx context.Context, id string) (*User, error)
	// ReplacePasswordHash sets newHash only while the stored hash is still
	// oldHash and reports whether it did.
	ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) (bool, error)
	// UserByEmail looks up a normalised email.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UpdateUser writes every mutable column of u by u.ID.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes the user with their refresh tokens and reset records.
	DeleteUser(ctx context.Context, id string) error
	ListUsers(ctx context.Context, q ListQuery) (users []*User, total int64, err error)
	// LockActiveAdmins returns the IDs of the active admins in ID order and
	// locks their rows until the transaction ends (use inside Atomic), so
	// two transactions that each remove an admin cannot both see the other
	// one still there.
	LockActiveAdmins(ctx context.Context) ([]string, error)

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error)
	// LockRefreshToken is RefreshTokenByHash that locks the row until the
	// transaction ends (use inside Atomic) and reads its latest committed
	// state, so a concurrent refresh of the same token waits for this one
	// and then sees its used_at.
	LockRefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	// MarkRefreshTokenUsed sets used_at on a token that is neither used nor
	// revoked and reports whether it did: false means another request got
	// there first, or it was revoked (Refresh reads the token with
	// LockRefreshToken first, so it learns which before it marks).
	MarkRefreshTokenUsed(ctx context.Context, hash string, at time.Time) (bool, error)
	// RefreshFamilyStart is when the family's first token was issued: the
	// sign-in the session began with.
	RefreshFamilyStart(ctx context.Context, familyID string) (time.Time, error)
	// RevokeRefreshFamily revokes every token of the family not yet revoked.
	RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) error
	// RevokeUserRefreshTokens revokes every token of the user not yet revoked.
	RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error
	// UserSessions returns up to limit live sessions of the user at now,
	// newest first: the families holding a token neither used, revoked nor
	// expired. An unknown user has none.
	UserSessions(ctx context.Context, userID string, now time.Time, limit int) ([]SessionInfo, error)

	// PutPasswordReset stores r, replacing any earlier record of the user:
	// at most one reset token is open per user.
	PutPasswordReset(ctx context.Context, r PasswordReset) error
	PasswordResetByHash(ctx context.Context, hash string) (*PasswordReset, error)
	// DeleteUserPasswordResets removes the user's open reset, if any.
	DeleteUserPasswordResets(ctx context.Context, userID string) error
	// AppendEvent writes an event to the outbox. Called inside Atomic with
	// the change it describes, so both commit or neither does.
	AppendEvent(ctx context.Context, e Event) error
	// AppendRevocation records, with the change that caused it, that other
	// services must stop honouring the tokens r names: an outbox event
	// they receive and a row they catch up from (sdk/revocations).
	AppendRevocation(ctx context.Context, r auth.Revocation) error

	// DeletePasswordReset removes the record with this token hash and reports
	// whether it existed; consuming a token is this delete, so of two
	// concurrent uses only one sees true.
	DeletePasswordReset(ctx context.Context, hash string) (bool, error)

	// PutEmailVerification stores v, replacing any earlier record of the
	// user: at most one verification token is open per user.
	PutEmailVerification(ctx context.Context, v EmailVerification) error
	EmailVerificationByHash(ctx context.Context, hash string) (*EmailVerification, error)
	// DeleteEmailVerification removes the record with this token hash and
	// reports whether it existed (consuming a token, as for resets).
	DeleteEmailVerification(ctx context.Context, hash string) (bool, error)
}

// ServiceAccountRepo stores service accounts. Lookups of an unknown ID
// return ErrNotFound.
type ServiceAccountRepo interface {
	CreateServiceAccount(ctx context.Context, a ServiceAccount) error
	ServiceAccountByID(ctx context.Context, id string) (*ServiceAccount, error)
	// ListServiceAccounts returns every account, revoked ones included,
	// oldest first.
	ListServiceAccounts(ctx context.Context) ([]ServiceAccount, error)
	// RevokeServiceAccount sets revoked_at on an account not yet revoked
	// and reports whether it did.
	RevokeServiceAccount(ctx context.Context, id string, at time.Time) (bool, error)
}

// Store is a Repo that can run several calls in one transaction.
type Store interface {
	Repo
	ServiceAccountRepo
	// RevocationsSince returns up to limit revocations still in force at
	// now decided at or after since, in ID (time) order after the ID after.
	RevocationsSince(ctx context.Context, since, now time.Time, after string, limit int) ([]auth.Revocation, error)
	// Atomic runs fn in a transaction with a Repo bound to it; fn's error
	// rolls the transaction back. fn may run more than once: a transaction
	// that loses a lock conflict (a deadlock) is rolled back and run again,
	// so fn sets whatever it reports outside afresh on every run.
	Atomic(ctx context.Context, fn func(Repo) error) error
}

// ListQuery selects a page of users ordered by ID (creation order).
type ListQuery struct {
	// Prefix of the email or the name, matched case-insensitively; the store
	// must escape LIKE wildcards in it.
	Prefix string
	Role   Role   // "" = any
	Status Status // "" = any
	// AfterID starts the page after this ID (keyset pagination); Offset is
	// used only when AfterID is empty.
	AfterID string
	Offset  int
	Limit   int
	// SkipTotal lets the store return -1 instead of counting: a COUNT over
	// every matching row is most of the cost of a deep keyset page.
	SkipTotal bool
}

// RefreshToken is a stored refresh token. Only the SHA-256 of the token is
// kept; tokens descending from one login share a FamilyID.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	// AMR is how the session's sign-in was authenticated, space-separated
	// amr values ("pwd", "pwd otp mfa"); every token of a family carries the
	// sign-in's, so a refreshed access token says what the first one said.
	AMR string
}

// PasswordReset is an open password-reset request, stored by token hash.
type PasswordReset struct {
	Hash   string
	UserID string
	// Email is the address the token was mailed to: the token is good only
	// while it is still the user's address.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EmailVerification is an open email-verification request, stored by token
// hash. Email is the address it proves: the user's email or their pending
// one, whichever it was mailed to.
type EmailVerification struct {
	Hash      string
	UserID    string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PasswordHasher hashes and verifies passwords (argon2id in production).
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error)
	// Unmatchable returns, without hashing, an encoded hash no password
	// matches that costs a full hash to verify against.
	Unmatchable() (string, error)
}

// PasswordPolicy judges a new password; a non-nil error is shown to the
// client as the reason, so it must be a policy error, never an internal one.
type PasswordPolicy interface {
	Check(password, email string) error
}

// AccessTokens issues and verifies signed access tokens.
type AccessTokens interface {
	// Issue signs a token of the session sessionID (the refresh family).
	// signIn is how and when the session's sign-in was authenticated.
	Issue(ctx context.Context, subject, role string, sessionVersion int64, sessionID string, emailVerified bool, signIn token.SignIn) (string, token.Claims, error)
	IssueClient(ctx context.Context, clientID, scope string) (string, token.Claims, error)
	Parse(tok string) (token.Claims, error)
	TTL() time.Duration
}

// Denylist remembers revoked access tokens until they expire: logged-out
// ones by jti, those of an ended session by "sid:" and the session ID. It
// must be shared by every service instance and survive restarts for a
// logout to hold everywhere (internal/revocation).
type Denylist interface {
	Revoke(ctx context.Context, key string, until time.Time) error
	// AnyRevoked reports whether any of keys is revoked; an error means it
	// could not tell, and the token must not be accepted.
	AnyRevoked(ctx context.Context, keys ...string) (bool, error)
}

// Limiter decides whether one more attempt under key may go ahead now and,
// if not, how long until one may (ratelimit.Limiter). An error means it
// could not decide.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Searcher finds users by free text in a search index (name and email,
// prefix and typo-tolerant). The index is fed asynchronously from events,
// so it may lag the database by a moment; List reads the users themselves
// from the store.
type Searcher interface {
	SearchUsers(ctx context.Context, q SearchQuery) (SearchResult, error)
}

// SearchQuery is one page of a text search.
type SearchQuery struct {
	Text   string
	Role   Role
	Status Status
	Limit  int
	After  string // the searcher's own opaque cursor
}

// SearchResult is a page of matching IDs, best first.
type SearchResult struct {
	IDs   []string
	Total int64
	Next  string
}
