package user_test

import (
	"context"
	"testing"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// TestTicketSpentAfterFiveWrongCodes: a ticket survives a few typos, but
// after five wrong codes it is spent, and even the right code is refused
// with it; a new sign-in gets a new ticket.
func TestTicketSpentAfterFiveWrongCodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "ivan@example.com", user.RoleUser)
	secret, _ := enrolTOTP(t, e, svc, u)
	e.clock.Add(factor.TOTPPeriod)

	ch := challenge(t, svc, u.Email)
	for range 5 {
		_, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", "000000")
		wantErr(t, err, user.ErrBadFactorCode)
	}
	_, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", totpNow(t, e, secret))
	wantErr(t, err, user.ErrMFATicketInvalid)

	// Four wrong codes leave the ticket good for the right one.
	ch = challenge(t, svc, u.Email)
	for range 4 {
		_, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", "000000")
		wantErr(t, err, user.ErrBadFactorCode)
	}
	if _, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", totpNow(t, e, secret)); err != nil {
		t.Fatalf("the right code after four wrong ones: %v", err)
	}
}
