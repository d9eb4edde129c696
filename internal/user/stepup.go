package user

import (
	"context"
	"time"
)

// Step-up: the writes that need a recent sign-in, decided here once for
// every flow (docs/design.md, "Step-up"). A leaked or long-lived token is
// the risk: a refresh keeps a session going for days, so the writes that
// take over or weaken an account, and every write of an admin on someone
// else's account, ask for a sign-in no older than Config.ReauthWindow,
// made with the caller's own second factor when they have one.
//
// Machines are exempt: a service account's token (client_credentials) has
// no sign-in to be recent, and its scope already bounds what it may do;
// nor does the in-process System actor (the admin CLI) have one. Creating
// and revoking service accounts is the System actor's alone, so it needs
// no step-up either.

// ownerWrites are what a user's own token needs step-up for on their own
// account: the changes that take it over or weaken it.
var ownerWrites = map[Op]bool{OpCredentials: true, OpDelete: true, OpRemoveFactors: true}

// adminWrites are what an admin's token needs step-up for on anyone
// else's account (OpSessions: ending them; listing is a read and asks
// no step-up).
var adminWrites = map[Op]bool{OpCreate: true, OpCreateAdmin: true, OpProfile: true, OpCredentials: true,
	OpRoleStatus: true, OpDelete: true, OpSessions: true, OpRemoveFactors: true}

// NeedsStepUp reports whether a's doing the write op to the account with
// id ("" for a creation) needs a recent sign-in. Callers ask only for
// writes; whether a may do op at all is Authorize's.
func (a Actor) NeedsStepUp(op Op, id string) bool {
	if a.SignIn == nil || a.System || a.ServiceAccount || a.ID == "" {
		return false
	}
	if id != "" && a.ID == id {
		return ownerWrites[op]
	}
	return a.Role == RoleAdmin && adminWrites[op]
}

// ActiveFactors says whether a user has an active second factor (the mfa
// flow), so step-up can ask for a sign-in that used it.
type ActiveFactors interface {
	HasActiveFactor(ctx context.Context, userID string) (bool, error)
}

// StepUp applies the rule: Check refuses a write that NeedsStepUp with
// ErrReauthenticationRequired unless the caller's sign-in is recent
// enough (Actor.RecentSignIn). The zero value checks recency against the
// system clock with a window of 0 (any age) and asks for no factor.
type StepUp struct {
	Clock  Clock
	Window time.Duration
	// Factors, when set, makes step-up ask for the caller's factor.
	Factors ActiveFactors
}

// Check is CheckAll for one op.
func (s StepUp) Check(ctx context.Context, a Actor, op Op, id string) error {
	return s.CheckAll(ctx, a, []Op{op}, id)
}

// CheckAll refuses the writes ops by a on the account id unless a's
// sign-in is recent enough, looking a's factors up at most once.
func (s StepUp) CheckAll(ctx context.Context, a Actor, ops []Op, id string) error {
	need := false
	for _, op := range ops {
		need = need || a.NeedsStepUp(op, id)
	}
	if !need {
		return nil
	}
	hasFactor := false
	if s.Factors != nil {
		var err error
		if hasFactor, err = s.Factors.HasActiveFactor(ctx, a.ID); err != nil {
			return StoreErr("check second factors", err)
		}
	}
	return a.RecentSignIn(s.Clock.Now(), s.Window, hasFactor)
}
