package user

import (
	"context"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// RevocationMargin is how long a published revocation is kept past the
// expiry of the newest token it covers: verifiers accept a token for their
// clock leeway after its exp, and their clocks may differ from ours.
const RevocationMargin = time.Minute

// NewRevocation starts a revocation, decided at now, of tokens issued up to
// now: it is kept for one access-token lifetime (ttl) and the margin, by
// when every token it covers has expired. The caller sets what it names.
func NewRevocation(reason string, now time.Time, ttl time.Duration) (auth.Revocation, error) {
	id, err := NewID()
	if err != nil {
		return auth.Revocation{}, Internal("revocation id", err)
	}
	return auth.Revocation{ID: id, Reason: reason, At: now, Until: now.Add(ttl + RevocationMargin)}, nil
}

// RevokeUserTokens records, inside the caller's transaction, that every
// token of u issued before the change is revoked: by session version when
// the change bumped it (a password change, a disabled account, sign-out
// everywhere: tokens of a lower sv), otherwise by issue time (a role change
// or a deletion: tokens issued up to now — a token issued in the same
// second after the change is refused too, and its client refreshes).
func RevokeUserTokens(ctx context.Context, r Repo, reason string, u *User, bySessionVersion bool, now time.Time, ttl time.Duration) error {
	rev, err := NewRevocation(reason, now, ttl)
	if err != nil {
		return err
	}
	rev.Subject = u.ID
	if bySessionVersion {
		rev.SessionVersionBelow = u.SessionVersion
	} else {
		rev.IssuedThrough = now
	}
	return r.AppendRevocation(ctx, rev)
}
