// Package mfa is the second-factor flow: enrolling a TOTP authenticator
// (secret, otpauth URI and QR code, active after one confirmed code),
// recovery codes (shown once, each good once), and the sign-in's second
// step: a right password for an account with a factor yields a short-lived,
// single-use ticket (Challenge), and the ticket with a code yields the user
// and how they authenticated (Redeem), from which the session flow starts a
// session whose tokens carry amr and auth_time.
// Removing factors (remove.go) is the owner's, after step-up, or an
// admin's for a user who lost theirs (the user is mailed); the recovery
// codes go with the last active factor.
//
// Every code attempt — a confirmation or a sign-in's — spends the account's
// password budget (the same limiter and key as a password), so a factor
// adds no guessing room. Secrets are sealed (package seal) before they
// reach the store, bound to the factor's id.
package mfa

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// maxFactors bounds a user's factors (rows, and work per sign-in).
const maxFactors = 10

// maxCodeLen bounds a typed code before any work is done on it.
const maxCodeLen = 64

// Users is what the flow reads of accounts.
type Users interface {
	UserByID(ctx context.Context, id string) (*user.User, error)
}

// Deps are what the flow is built from.
type Deps struct {
	Users Users
	// Factors stores factors, codes and tickets; nil = a store without
	// them: sign-ins ask for no factor and enrolment is unavailable.
	Factors factor.Store
	// Keys seal TOTP secrets; nil = TOTP cannot be enrolled (existing
	// factors cannot be checked either, so configure the keys before
	// anyone enrols).
	Keys *seal.Keyring
	// Passkeys stores passkeys and WebAuthn ceremonies; nil = passkeys
	// are unavailable (so is a missing user.Config.PublicURL).
	Passkeys factor.PasskeyStore
	// PasswordAttempts is the per-account password budget; every code
	// attempt spends it. nil = unlimited.
	PasswordAttempts user.Limiter
	// Tx runs a removal with its outbox event (the user.Store); nil =
	// factors cannot be removed.
	Tx     Transactor
	Logger *slog.Logger
	Clock  user.Clock
}

// Flow runs the second-factor flows.
type Flow struct {
	users   Users
	factors factor.Store
	tx      Transactor
	keys    *seal.Keyring
	tries   user.Limiter
	log     *slog.Logger
	clock   user.Clock
	cfg     user.Config
	// nextSweep is when, in Unix nanoseconds, a ticket issue next deletes
	// the expired tickets (maybeSweepTickets).
	nextSweep atomic.Int64
	// rp is the WebAuthn relying party and passkeys its storage; either
	// nil = passkeys are unavailable.
	rp       *webauthn.WebAuthn
	passkeys factor.PasskeyStore
}

// ticketSweepInterval is how often, at most, issuing a ticket also deletes
// the expired ones: tickets live minutes, and without a sweep every
// sign-in's row would stay.
const ticketSweepInterval = time.Minute

// New builds the flow; cfg must have its defaults (user.Config.WithDefaults).
func New(d Deps, cfg user.Config) *Flow {
	f := &Flow{users: d.Users, factors: d.Factors, tx: d.Tx, keys: d.Keys, tries: d.PasswordAttempts,
		log: user.LoggerOr(d.Logger), clock: d.Clock, cfg: cfg}
	f.rp, f.passkeys = relyingParty(f.log, cfg, d.Passkeys, d.Factors)
	return f
}

var (
	errFactorNotFound = &user.Error{Code: user.CodeNotFound, Message: "factor not found"}
	errConfirmed      = &user.Error{Code: user.CodeFailedPrecondition, Message: "the factor is confirmed already"}
	errTooManyFactors = &user.Error{Code: user.CodeFailedPrecondition, Message: "too many second factors; remove one first"}
	errWrongCode      = user.Invalid(map[string]string{"code": "is wrong or was used already"})
	errNoFactor       = &user.Error{Code: user.CodeFailedPrecondition, Message: "recovery codes need an active second factor first"}
)

// owner authorizes the caller for userID's factors and reads the account.
func (f *Flow) owner(ctx context.Context, actor user.Actor, userID string) (*user.User, error) {
	if actor.ID == "" {
		return nil, user.ErrNoCredential
	}
	if err := actor.AuthorizeBeforeRead(user.OpFactors, userID); err != nil {
		return nil, err
	}
	if f.factors == nil {
		return nil, user.ErrMFAUnavailable
	}
	u, err := f.users.UserByID(ctx, userID)
	if err != nil {
		return nil, user.StoreErr("get user", err)
	}
	return u, nil
}

// EnrolTOTP starts a TOTP enrolment of the caller's own account: a new
// secret, not active until ConfirmTOTP. An earlier unconfirmed one is
// replaced.
func (f *Flow) EnrolTOTP(ctx context.Context, actor user.Actor, userID, name string) (*user.TOTPEnrolment, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "authenticator"
	}
	if utf8.RuneCountInString(name) > factor.MaxNameLen || !utf8.ValidString(name) {
		return nil, user.Invalid(map[string]string{"name": "must be at most 64 characters"})
	}
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, err
	}
	if f.keys == nil {
		return nil, user.ErrMFAUnavailable
	}
	if err := f.factors.DeleteUnconfirmedFactors(ctx, u.ID, factor.KindTOTP); err != nil {
		return nil, user.StoreErr("delete unconfirmed factors", err)
	}
	existing, err := f.factors.Factors(ctx, u.ID)
	if err != nil {
		return nil, user.StoreErr("list factors", err)
	}
	if len(existing) >= maxFactors {
		return nil, errTooManyFactors
	}
	enrol, err := factor.NewTOTP(f.cfg.MFAIssuer, u.Email)
	if err != nil {
		return nil, user.Internal("new totp", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, user.Internal("factor id", err)
	}
	sealed, err := f.keys.Seal([]byte(enrol.Secret), totpContext(id.String()))
	if err != nil {
		return nil, user.Internal("seal totp secret", err)
	}
	fac := factor.Factor{ID: id.String(), UserID: u.ID, Kind: factor.KindTOTP, Name: name, Secret: sealed, CreatedAt: f.clock.Now()}
	if err := f.factors.CreateFactor(ctx, fac); err != nil {
		return nil, user.StoreErr("create factor", err)
	}
	return &user.TOTPEnrolment{FactorID: fac.ID, Secret: enrol.Secret, URI: enrol.URI, QRPNG: enrol.QRPNG}, nil
}

// totpContext binds a sealed TOTP secret to its factor's row.
func totpContext(factorID string) string { return "totp:" + factorID }

// ConfirmTOTP activates an enrolment with one code from the app. The
// account's first active factor also gets its recovery codes, returned
// here once; later confirmations return none.
func (f *Flow) ConfirmTOTP(ctx context.Context, actor user.Actor, userID, factorID, code string) ([]string, error) {
	if len(code) > maxCodeLen {
		return nil, errWrongCode
	}
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, err
	}
	if err := user.AllowAttempt(ctx, f.log, f.tries, "password|"+u.Email); err != nil {
		return nil, err
	}
	fac, err := f.factors.Factor(ctx, u.ID, factorID)
	if errors.Is(err, factor.ErrNotFound) {
		return nil, errFactorNotFound
	}
	if err != nil {
		return nil, user.StoreErr("get factor", err)
	}
	if fac.Kind != factor.KindTOTP {
		return nil, errPasskeyNeedsCredential
	}
	if fac.Active() {
		return nil, errConfirmed
	}
	step, ok, err := f.checkTOTP(fac, code)
	if errors.Is(err, user.ErrBadFactorCode) {
		// The caller is signed in: a wrong code is a bad field, not a
		// bad credential (401 would read as "your token is wrong").
		return nil, errWrongCode
	}
	if err != nil || !ok {
		return nil, err
	}
	now := f.clock.Now()
	if confirmed, err := f.factors.ConfirmFactor(ctx, u.ID, fac.ID, step, now); err != nil || !confirmed {
		return nil, errOr(err, errWrongCode, "confirm factor")
	}
	left, err := f.factors.RecoveryCodesLeft(ctx, u.ID)
	if err != nil || left > 0 {
		return nil, errOr(err, nil, "count recovery codes")
	}
	return f.newRecoveryCodes(ctx, u.ID)
}

// checkTOTP opens fac's secret and checks code against it; a wrong code is
// user.ErrBadFactorCode.
func (f *Flow) checkTOTP(fac *factor.Factor, code string) (int64, bool, error) {
	if f.keys == nil {
		return 0, false, user.ErrMFAUnavailable
	}
	secret, _, err := f.keys.Open(fac.Secret, totpContext(fac.ID))
	if err != nil {
		return 0, false, user.Internal("open totp secret", err)
	}
	step, ok, err := factor.VerifyTOTP(string(secret), code, f.clock.Now(), fac.TOTPStep)
	if err != nil {
		return 0, false, user.Internal("verify totp", err)
	}
	if !ok {
		return 0, false, user.ErrBadFactorCode
	}
	return step, true, nil
}

// errOr is err wrapped as a store error, or else (when err is nil) orElse.
func errOr(err error, orElse error, op string) error {
	if err != nil {
		return user.StoreErr(op, err)
	}
	return orElse
}

// Factors lists the caller's own factors and how many unused recovery
// codes they have left.
func (f *Flow) Factors(ctx context.Context, actor user.Actor, userID string) ([]user.FactorInfo, int, error) {
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, 0, err
	}
	list, err := f.factors.Factors(ctx, u.ID)
	if err != nil {
		return nil, 0, user.StoreErr("list factors", err)
	}
	left, err := f.factors.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		return nil, 0, user.StoreErr("count recovery codes", err)
	}
	out := make([]user.FactorInfo, len(list))
	for i, fac := range list {
		out[i] = user.FactorInfo{ID: fac.ID, Kind: string(fac.Kind), Name: fac.Name, Active: fac.Active(),
			CreatedAt: fac.CreatedAt, LastUsedAt: fac.LastUsedAt}
	}
	return out, left, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes by ten new
// ones, returned once. It needs an active factor: codes stand in for one.
func (f *Flow) RegenerateRecoveryCodes(ctx context.Context, actor user.Actor, userID string) ([]string, error) {
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, err
	}
	kinds, err := f.activeKinds(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, errNoFactor
	}
	return f.newRecoveryCodes(ctx, u.ID)
}

func (f *Flow) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes, err := factor.NewRecoveryCodes()
	if err != nil {
		return nil, user.Internal("new recovery codes", err)
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i], _ = factor.HashRecoveryCode(userID, c)
	}
	if err := f.factors.ReplaceRecoveryCodes(ctx, userID, hashes, f.clock.Now()); err != nil {
		return nil, user.StoreErr("store recovery codes", err)
	}
	return codes, nil
}

// activeKinds lists the kinds of the user's active factors, once each.
func (f *Flow) activeKinds(ctx context.Context, userID string) ([]string, error) {
	list, err := f.factors.Factors(ctx, userID)
	if err != nil {
		return nil, user.StoreErr("list factors", err)
	}
	var kinds []string
	for _, fac := range list {
		if fac.Active() && !slices.Contains(kinds, string(fac.Kind)) {
			kinds = append(kinds, string(fac.Kind))
		}
	}
	return kinds, nil
}

// Challenge is asked by a sign-in after the right password: for an
// account with an active factor it stores a ticket and returns it with the
// kinds that may complete it; for one without, nil.
func (f *Flow) Challenge(ctx context.Context, u *user.User) (*user.MFAChallenge, error) {
	if f.factors == nil {
		return nil, nil
	}
	kinds, err := f.activeKinds(ctx, u.ID)
	if err != nil || len(kinds) == 0 {
		return nil, err
	}
	if f.rp == nil { // a passkey this service cannot check is not offered
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == string(factor.KindWebAuthn) })
	}
	left, err := f.factors.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		return nil, user.StoreErr("count recovery codes", err)
	}
	if left > 0 {
		kinds = append(kinds, string(factor.KindRecoveryCode))
	}
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return nil, user.Internal("new mfa ticket", err)
	}
	now := f.clock.Now()
	t := factor.Ticket{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(f.cfg.MFATicketTTL)}
	if err := f.factors.CreateTicket(ctx, t); err != nil {
		return nil, user.StoreErr("store mfa ticket", err)
	}
	f.maybeSweepTickets(ctx, now)
	ch := &user.MFAChallenge{Ticket: plain, ExpiresAt: t.ExpiresAt, Factors: kinds}
	if slices.Contains(kinds, string(factor.KindWebAuthn)) {
		if ch.WebAuthn, err = f.beginSecondFactor(ctx, u, hash, now, t.ExpiresAt); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// maybeSweepTickets deletes the expired tickets, used or not, at most once
// per ticketSweepInterval (whichever instance's sign-in comes first). A
// failure only leaves the rows for the next sweep.
func (f *Flow) maybeSweepTickets(ctx context.Context, now time.Time) {
	next := f.nextSweep.Load()
	if now.UnixNano() < next || !f.nextSweep.CompareAndSwap(next, now.Add(ticketSweepInterval).UnixNano()) {
		return
	}
	if _, err := f.factors.DeleteExpiredTickets(ctx, now); err != nil {
		f.log.WarnContext(ctx, "mfa: sweeping expired tickets failed", "error", err)
	}
	if f.passkeys != nil {
		if _, err := f.passkeys.DeleteExpiredCeremonies(ctx, now); err != nil {
			f.log.WarnContext(ctx, "mfa: sweeping expired webauthn ceremonies failed", "error", err)
		}
	}
}

// HasActiveFactor reports whether the user has a confirmed factor: step-up
// then asks for a sign-in that used it.
func (f *Flow) HasActiveFactor(ctx context.Context, userID string) (bool, error) {
	if f.factors == nil {
		return false, nil
	}
	kinds, err := f.activeKinds(ctx, userID)
	return len(kinds) > 0, err
}
