package mfa

import (
	"context"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
)

// Transactor runs a removal in one transaction with its outbox event
// (user.Store). A Repo it hands out that is also a factor.Store (the SQL
// store's) removes the factors in that transaction too.
type Transactor interface {
	Atomic(ctx context.Context, fn func(user.Repo) error) error
}

var (
	errNoTransactor = &user.Error{Code: user.CodeFailedPrecondition, Message: "removing factors is not available"}
	// errLastAdminFactor: with USERSVC_REQUIRE_ADMIN_MFA on, an admin's
	// factor is their admin powers; they enrol another before removing
	// their last one, so an admin is never left unable to administer by
	// their own hand. Another admin may remove it (a lost device): the
	// admin then signs in only to enrol one.
	errLastAdminFactor = &user.Error{Code: user.CodeFailedPrecondition,
		Message: "admins must keep a second factor: enrol another one before removing your last"}
)

// RemoveFactor removes one of userID's factors, active or not
// (user.OpRemoveFactors: the owner, or an admin for someone who lost
// theirs), after step-up. When no active factor is left the recovery
// codes go too: they stand in for a factor, and alone would be one. An
// admin's removal is mailed to the owner (user.EventFactorsRemoved).
func (f *Flow) RemoveFactor(ctx context.Context, actor user.Actor, userID, factorID string) error {
	if p := user.CheckID(factorID); p != "" {
		return user.Invalid(map[string]string{"factor_id": p})
	}
	return f.remove(ctx, actor, userID, factorID)
}

// RemoveFactors removes all of userID's factors and recovery codes, as
// RemoveFactor does one.
func (f *Flow) RemoveFactors(ctx context.Context, actor user.Actor, userID string) error {
	return f.remove(ctx, actor, userID, "")
}

// remove removes factorID ("" = every factor) in one transaction that
// first locks the account, so two removals of an account's last two
// factors cannot each see the other's left and keep the codes.
func (f *Flow) remove(ctx context.Context, actor user.Actor, userID, factorID string) error {
	if err := f.mayRemove(ctx, actor, userID); err != nil {
		return err
	}
	now := f.clock.Now()
	ev, err := user.NewEvent(user.EventFactorsRemoved, userID, now)
	if err != nil {
		return err
	}
	err = f.tx.Atomic(ctx, func(r user.Repo) error {
		u, err := r.LockUser(ctx, userID)
		if err != nil {
			return err
		}
		if err := actor.Authorize(user.OpRemoveFactors, userID, u.Role); err != nil {
			return err
		}
		fs := f.factors
		if in, ok := r.(factor.Store); ok {
			fs = in
		}
		left, removedActive, err := deleteFactors(ctx, fs, userID, factorID)
		if err != nil {
			return err
		}
		if left > 0 {
			return f.notify(ctx, r, actor, u, ev)
		}
		if removedActive && actor.ID == userID && u.Role == user.RoleAdmin && f.cfg.RequireAdminMFA {
			return errLastAdminFactor
		}
		if err := fs.ReplaceRecoveryCodes(ctx, userID, nil, now); err != nil {
			return err
		}
		return f.notify(ctx, r, actor, u, ev)
	})
	if err != nil {
		return user.StoreErr("remove factors", err)
	}
	return nil
}

// mayRemove checks, before anything is read, that actor may remove
// userID's factors and signed in recently enough to.
func (f *Flow) mayRemove(ctx context.Context, actor user.Actor, userID string) error {
	if p := user.CheckID(userID); p != "" {
		return user.Invalid(map[string]string{"id": p})
	}
	if actor.ID == "" && !actor.System {
		return user.ErrNoCredential
	}
	if err := actor.AuthorizeBeforeRead(user.OpRemoveFactors, userID); err != nil {
		return err
	}
	if f.factors == nil {
		return user.ErrMFAUnavailable
	}
	if f.tx == nil {
		return errNoTransactor
	}
	step := user.StepUp{Clock: f.clock, Window: f.cfg.ReauthWindow, Factors: f}
	return step.Check(ctx, actor, user.OpRemoveFactors, userID)
}

// deleteFactors deletes the user's factor id ("" = all of them), counts
// the active factors left and reports whether an active one was deleted;
// an id the user has not is errFactorNotFound.
func deleteFactors(ctx context.Context, fs factor.Store, userID, id string) (left int, removedActive bool, err error) {
	list, err := fs.Factors(ctx, userID)
	if err != nil {
		return 0, false, err
	}
	found := false
	for _, fac := range list {
		if id != "" && fac.ID != id {
			if fac.Active() {
				left++
			}
			continue
		}
		found, removedActive = true, removedActive || fac.Active()
		if _, err := fs.DeleteFactor(ctx, userID, fac.ID); err != nil {
			return 0, false, err
		}
	}
	if id != "" && !found {
		return 0, false, errFactorNotFound
	}
	return left, removedActive, nil
}

// notify appends the mail to the owner when someone else removed their
// factors: they learn of it even if it was not what they asked for.
func (f *Flow) notify(ctx context.Context, r user.Repo, actor user.Actor, u *user.User, ev user.Event) error {
	if actor.ID == u.ID {
		return nil
	}
	ev.Notice = &user.EventNotice{Email: u.Email, Name: u.Name}
	return user.AppendEvents(ctx, r, ev)
}
