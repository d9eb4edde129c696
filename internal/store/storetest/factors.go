package storetest

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
)

// FactorStore is what the second-factor suite needs: the factor port, and
// the user repository to make (and delete) the users factors belong to.
type FactorStore interface {
	factor.Store
	user.Repo
}

// RunFactors is the contract of factor.Store. open must return an empty
// store with the schema in place.
func RunFactors(t *testing.T, open func(t *testing.T) FactorStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s FactorStore)
	}{
		{"CreateConfirmAndGet", testFactorCreateConfirm},
		{"FactorsBelongToTheirUser", testFactorOwnership},
		{"TOTPStepAcceptedOnce", testTOTPStepOnce},
		{"ConcurrentTOTPStep", testConcurrentTOTPStep},
		{"DeleteUnconfirmed", testDeleteUnconfirmed},
		{"ResealIsConditional", testReseal},
		{"AllFactorsPages", testAllFactors},
		{"RecoveryCodes", testRecoveryCodes},
		{"ConcurrentRecoveryCode", testConcurrentRecoveryCode},
		{"Tickets", testTickets},
		{"ConcurrentTicket", testConcurrentTicket},
		{"TicketAttemptsCapped", testTicketAttempts},
		{"ConcurrentTicketAttempts", testConcurrentTicketAttempts},
		{"DeleteUserRemovesFactors", testDeleteUserRemovesFactors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// oneWins races fn from concurrency goroutines and checks that exactly one
// reports true: a consuming method decides in one statement.
func oneWins(t *testing.T, what string, fn func() (bool, error)) {
	t.Helper()
	var wins atomic.Int32
	race(func(int) {
		ok, err := fn()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if wins.Load() != 1 {
		t.Errorf("%s: %d callers won, want exactly 1", what, wins.Load())
	}
}

func newFactor(t *testing.T, u *user.User, kind factor.Kind) factor.Factor {
	t.Helper()
	return factor.Factor{ID: newID(t), UserID: u.ID, Kind: kind, Name: "phone", Secret: "v1.k1." + newHash(), CreatedAt: baseTime}
}

// addFactor stores a factor, confirmed at baseTime with step 0 if asked.
func addFactor(t *testing.T, s FactorStore, u *user.User, confirmed bool) factor.Factor {
	t.Helper()
	f := newFactor(t, u, factor.KindTOTP)
	if err := s.CreateFactor(t.Context(), f); err != nil {
		t.Fatalf("CreateFactor: %v", err)
	}
	if confirmed {
		if ok, err := s.ConfirmFactor(t.Context(), u.ID, f.ID, 0, baseTime); !ok || err != nil {
			t.Fatalf("ConfirmFactor: %v, %v", ok, err)
		}
	}
	return f
}

func getFactor(t *testing.T, s FactorStore, userID, id string) *factor.Factor {
	t.Helper()
	f, err := s.Factor(t.Context(), userID, id)
	if err != nil {
		t.Fatalf("Factor: %v", err)
	}
	return f
}

func testFactorCreateConfirm(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	f := addFactor(t, s, u, false)
	got := getFactor(t, s, u.ID, f.ID)
	if got.Kind != factor.KindTOTP || got.Name != "phone" || got.Secret != f.Secret || got.Active() || got.LastUsedAt != nil || got.TOTPStep != 0 {
		t.Errorf("stored factor %+v, wrote %+v", got, f)
	}
	checkTime(t, "created_at", got.CreatedAt, f.CreatedAt)

	confirmAt := baseTime.Add(time.Minute)
	if ok, err := s.ConfirmFactor(ctx, u.ID, f.ID, 42, confirmAt); !ok || err != nil {
		t.Fatalf("ConfirmFactor = %v, %v", ok, err)
	}
	if ok, err := s.ConfirmFactor(ctx, u.ID, f.ID, 43, confirmAt); ok || err != nil {
		t.Errorf("ConfirmFactor(again) = %v, %v; want false", ok, err)
	}
	got = getFactor(t, s, u.ID, f.ID)
	if !got.Active() || got.TOTPStep != 42 {
		t.Errorf("confirmed factor %+v", got)
	}
	checkTimePtr(t, "confirmed_at", got.ConfirmedAt, &confirmAt)
	checkTimePtr(t, "last_used_at", got.LastUsedAt, &confirmAt)

	err := s.CreateFactor(ctx, newFactor(t, &user.User{ID: newID(t)}, factor.KindTOTP))
	wantErr(t, "CreateFactor(missing user)", err, user.ErrNotFound)
}

// testFactorOwnership: a user reaches only their own factors.
func testFactorOwnership(t *testing.T, s FactorStore) {
	ctx := t.Context()
	a, b := seedUser(t, s), seedUser(t, s)
	fa1, fa2, fb := addFactor(t, s, a, true), addFactor(t, s, a, false), addFactor(t, s, b, true)
	list, err := s.Factors(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].ID != fa1.ID || list[1].ID != fa2.ID {
		t.Fatalf("Factors(a) = %v, %v; want fa1, fa2", list, err)
	}
	_, err = s.Factor(ctx, a.ID, fb.ID)
	wantErr(t, "Factor(a, b's factor)", err, factor.ErrNotFound)
	if ok, err := s.ConfirmFactor(ctx, b.ID, fa2.ID, 1, baseTime); ok || err != nil {
		t.Errorf("ConfirmFactor(b, a's factor) = %v, %v", ok, err)
	}
	if ok, err := s.DeleteFactor(ctx, a.ID, fb.ID); ok || err != nil {
		t.Errorf("DeleteFactor(a, b's factor) = %v, %v", ok, err)
	}
	if ok, err := s.DeleteFactor(ctx, a.ID, fa1.ID); !ok || err != nil {
		t.Errorf("DeleteFactor(a, own) = %v, %v", ok, err)
	}
	if ok, _ := s.DeleteFactor(ctx, a.ID, fa1.ID); ok {
		t.Error("DeleteFactor(again) = true")
	}
	getFactor(t, s, b.ID, fb.ID)
}

func testTOTPStepOnce(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	f := addFactor(t, s, u, true)
	at := baseTime.Add(time.Hour)
	steps := []struct {
		step int64
		want bool
	}{{10, true}, {10, false}, {9, false}, {11, true}, {0, false}}
	for _, st := range steps {
		if ok, err := s.AcceptTOTPStep(ctx, f.ID, st.step, at); ok != st.want || err != nil {
			t.Errorf("AcceptTOTPStep(%d) = %v, %v; want %v", st.step, ok, err, st.want)
		}
	}
	got := getFactor(t, s, u.ID, f.ID)
	if got.TOTPStep != 11 {
		t.Errorf("totp_step = %d, want 11", got.TOTPStep)
	}
	checkTimePtr(t, "last_used_at", got.LastUsedAt, &at)
	pending := addFactor(t, s, u, false)
	if ok, err := s.AcceptTOTPStep(ctx, pending.ID, 12, at); ok || err != nil {
		t.Errorf("AcceptTOTPStep(unconfirmed) = %v, %v; want false", ok, err)
	}
}

func testConcurrentTOTPStep(t *testing.T, s FactorStore) {
	f := addFactor(t, s, seedUser(t, s), true)
	oneWins(t, "AcceptTOTPStep of one code", func() (bool, error) { return s.AcceptTOTPStep(t.Context(), f.ID, 100, baseTime) })
}

func testDeleteUnconfirmed(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	active, pending := addFactor(t, s, u, true), addFactor(t, s, u, false)
	other := newFactor(t, u, factor.KindWebAuthn)
	if err := s.CreateFactor(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUnconfirmedFactors(ctx, u.ID, factor.KindTOTP); err != nil {
		t.Fatal(err)
	}
	list, _ := s.Factors(ctx, u.ID)
	var got []string
	for _, f := range list {
		got = append(got, f.ID)
	}
	if !slices.Equal(got, []string{active.ID, other.ID}) {
		t.Errorf("after DeleteUnconfirmedFactors(totp): %v; want %v (not %v)", got, []string{active.ID, other.ID}, pending.ID)
	}
}

func testReseal(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	f := addFactor(t, s, u, true)
	if ok, err := s.ResealFactor(ctx, f.ID, "v1.k0.stale", "v1.k2.new"); ok || err != nil {
		t.Errorf("ResealFactor(stale old) = %v, %v; want false", ok, err)
	}
	if ok, err := s.ResealFactor(ctx, f.ID, f.Secret, "v1.k2.new"); !ok || err != nil {
		t.Errorf("ResealFactor = %v, %v", ok, err)
	}
	if got := getFactor(t, s, u.ID, f.ID); got.Secret != "v1.k2.new" {
		t.Errorf("secret after reseal %q", got.Secret)
	}
}

func testAllFactors(t *testing.T, s FactorStore) {
	var want []string
	for range 3 {
		u := seedUser(t, s)
		want = append(want, addFactor(t, s, u, true).ID, addFactor(t, s, u, false).ID)
	}
	var got []string
	after := ""
	for {
		page, err := s.AllFactors(t.Context(), after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			got = append(got, f.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("AllFactors pages = %v, want %v", got, want)
	}
}

func codesLeft(t *testing.T, s FactorStore, userID string) int {
	t.Helper()
	n, err := s.RecoveryCodesLeft(t.Context(), userID)
	if err != nil {
		t.Fatalf("RecoveryCodesLeft: %v", err)
	}
	return n
}

func testRecoveryCodes(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	first := []string{newHash(), newHash(), newHash()}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, first, baseTime); err != nil {
		t.Fatal(err)
	}
	if n := codesLeft(t, s, u.ID); n != 3 {
		t.Fatalf("left = %d, want 3", n)
	}
	if ok, _ := s.UseRecoveryCode(ctx, other.ID, first[0], baseTime); ok {
		t.Error("another user used u's code")
	}
	if ok, err := s.UseRecoveryCode(ctx, u.ID, first[0], baseTime); !ok || err != nil {
		t.Errorf("UseRecoveryCode = %v, %v", ok, err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, u.ID, first[0], baseTime); ok {
		t.Error("a used code was accepted again")
	}
	if n := codesLeft(t, s, u.ID); n != 2 {
		t.Errorf("left = %d, want 2", n)
	}
	second := []string{newHash(), newHash()}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, second, baseTime); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, u.ID, first[1], baseTime); ok {
		t.Error("a replaced code was accepted")
	}
	if n := codesLeft(t, s, u.ID); n != 2 {
		t.Errorf("left after replacing = %d, want 2", n)
	}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, nil, baseTime); err != nil || codesLeft(t, s, u.ID) != 0 {
		t.Errorf("ReplaceRecoveryCodes(none): %v, %d left", err, codesLeft(t, s, u.ID))
	}
	err := s.ReplaceRecoveryCodes(ctx, newID(t), []string{newHash()}, baseTime)
	wantErr(t, "ReplaceRecoveryCodes(missing user)", err, user.ErrNotFound)
}

func testConcurrentRecoveryCode(t *testing.T, s FactorStore) {
	u := seedUser(t, s)
	h := newHash()
	if err := s.ReplaceRecoveryCodes(t.Context(), u.ID, []string{h}, baseTime); err != nil {
		t.Fatal(err)
	}
	oneWins(t, "UseRecoveryCode of one code", func() (bool, error) { return s.UseRecoveryCode(t.Context(), u.ID, h, baseTime) })
}

func newTicket(u *user.User) factor.Ticket {
	return factor.Ticket{Hash: newHash(), UserID: u.ID, CreatedAt: baseTime, ExpiresAt: baseTime.Add(5 * time.Minute)}
}

func testTickets(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	tk, expired := newTicket(u), newTicket(u)
	expired.ExpiresAt = baseTime.Add(time.Second)
	for _, x := range []factor.Ticket{tk, expired} {
		if err := s.CreateTicket(ctx, x); err != nil {
			t.Fatalf("CreateTicket: %v", err)
		}
	}
	now := baseTime.Add(time.Minute)
	got, err := s.Ticket(ctx, tk.Hash, now)
	if err != nil || got.UserID != u.ID || got.UsedAt != nil {
		t.Fatalf("Ticket = %+v, %v", got, err)
	}
	checkTime(t, "ticket created_at", got.CreatedAt, tk.CreatedAt)
	checkTime(t, "ticket expires_at", got.ExpiresAt, tk.ExpiresAt)
	_, err = s.Ticket(ctx, expired.Hash, now)
	wantErr(t, "Ticket(expired)", err, factor.ErrNotFound)
	if ok, _ := s.UseTicket(ctx, expired.Hash, now); ok {
		t.Error("an expired ticket was used")
	}
	if ok, err := s.UseTicket(ctx, tk.Hash, now); !ok || err != nil {
		t.Errorf("UseTicket = %v, %v", ok, err)
	}
	if ok, _ := s.UseTicket(ctx, tk.Hash, now); ok {
		t.Error("a ticket was used twice")
	}
	_, err = s.Ticket(ctx, tk.Hash, now)
	wantErr(t, "Ticket(used)", err, factor.ErrNotFound)
	if n, err := s.DeleteExpiredTickets(ctx, now); n != 1 || err != nil {
		t.Errorf("DeleteExpiredTickets = %d, %v; want 1", n, err)
	}
	wantErr(t, "CreateTicket(missing user)", s.CreateTicket(ctx, newTicket(&user.User{ID: newID(t)})), user.ErrNotFound)
}

func testConcurrentTicket(t *testing.T, s FactorStore) {
	tk := newTicket(seedUser(t, s))
	if err := s.CreateTicket(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	oneWins(t, "UseTicket of one ticket", func() (bool, error) { return s.UseTicket(t.Context(), tk.Hash, baseTime) })
}

func testDeleteUserRemovesFactors(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u, keep := seedUser(t, s), seedUser(t, s)
	f, kf := addFactor(t, s, u, true), addFactor(t, s, keep, true)
	tk := newTicket(u)
	if err := s.CreateTicket(ctx, tk); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*user.User{u, keep} {
		if err := s.ReplaceRecoveryCodes(ctx, x.ID, []string{newHash()}, baseTime); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.Factor(ctx, u.ID, f.ID)
	wantErr(t, "Factor(deleted user's)", err, factor.ErrNotFound)
	_, err = s.Ticket(ctx, tk.Hash, baseTime)
	wantErr(t, "Ticket(deleted user's)", err, factor.ErrNotFound)
	if n := codesLeft(t, s, u.ID); n != 0 {
		t.Errorf("deleted user has %d recovery codes", n)
	}
	getFactor(t, s, keep.ID, kf.ID)
	if n := codesLeft(t, s, keep.ID); n != 1 {
		t.Errorf("other user has %d recovery codes, want 1", n)
	}
}

// ticketAttempts is the cap the attempt tests use.
const ticketAttempts = 5

func testTicketAttempts(t *testing.T, s FactorStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	tk, used, expired := newTicket(u), newTicket(u), newTicket(u)
	expired.ExpiresAt = baseTime.Add(-time.Second)
	for _, x := range []factor.Ticket{tk, used, expired} {
		if err := s.CreateTicket(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ticketAttempts {
		if ok, err := s.AttemptTicket(ctx, tk.Hash, ticketAttempts, baseTime); !ok || err != nil {
			t.Fatalf("AttemptTicket #%d = %v, %v; want true", i+1, ok, err)
		}
	}
	if ok, err := s.AttemptTicket(ctx, tk.Hash, ticketAttempts, baseTime); ok || err != nil {
		t.Errorf("AttemptTicket past the cap = %v, %v; want false", ok, err)
	}
	// A larger cap later is still counted from the attempts made.
	if ok, _ := s.AttemptTicket(ctx, tk.Hash, ticketAttempts+1, baseTime); !ok {
		t.Error("AttemptTicket with a higher cap refused")
	}
	if ok, _ := s.UseTicket(ctx, used.Hash, baseTime); !ok {
		t.Fatal("UseTicket failed")
	}
	if ok, _ := s.AttemptTicket(ctx, used.Hash, ticketAttempts, baseTime); ok {
		t.Error("AttemptTicket on a used ticket counted")
	}
	if ok, _ := s.AttemptTicket(ctx, expired.Hash, ticketAttempts, baseTime); ok {
		t.Error("AttemptTicket on an expired ticket counted")
	}
	if ok, _ := s.AttemptTicket(ctx, newHash(), ticketAttempts, baseTime); ok {
		t.Error("AttemptTicket on an unknown ticket counted")
	}
	// Attempts do not spend a ticket below the cap: it can still be used.
	fresh := newTicket(u)
	if err := s.CreateTicket(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AttemptTicket(ctx, fresh.Hash, ticketAttempts, baseTime); !ok {
		t.Fatal("AttemptTicket refused")
	}
	if _, err := s.Ticket(ctx, fresh.Hash, baseTime); err != nil {
		t.Errorf("Ticket after one attempt: %v", err)
	}
	if ok, _ := s.UseTicket(ctx, fresh.Hash, baseTime); !ok {
		t.Error("UseTicket after one attempt refused")
	}
}

// testConcurrentTicketAttempts: of many concurrent attempts on one
// ticket, exactly the cap's number are counted.
func testConcurrentTicketAttempts(t *testing.T, s FactorStore) {
	tk := newTicket(seedUser(t, s))
	if err := s.CreateTicket(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	race(func(int) {
		ok, err := s.AttemptTicket(t.Context(), tk.Hash, ticketAttempts, baseTime)
		if err != nil {
			t.Errorf("AttemptTicket: %v", err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if wins.Load() != ticketAttempts {
		t.Errorf("%d attempts counted, want %d", wins.Load(), ticketAttempts)
	}
}
