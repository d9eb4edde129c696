package storetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
)

// PasskeyStore is what the passkey suite needs: both factor ports and the
// user repository.
type PasskeyStore interface {
	factor.Store
	factor.PasskeyStore
	user.Repo
}

// RunPasskeys is the contract of factor.PasskeyStore. open must return an
// empty store with the schema in place.
func RunPasskeys(t *testing.T, open func(t *testing.T) PasskeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s PasskeyStore)
	}{
		{"ConfirmAndFind", testPasskeyConfirm},
		{"DuplicateCredential", testPasskeyDuplicate},
		{"SignCountForwardOnly", testSignCount},
		{"ConcurrentSignCount", testConcurrentSignCount},
		{"Ceremonies", testCeremonies},
		{"ConcurrentCeremonyTake", testConcurrentCeremony},
		{"DeleteFactorRemovesPasskey", testDeletePasskeyFactor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// addPasskey stores an unconfirmed webauthn factor of u and, if confirm,
// its passkey with counter count.
func addPasskey(t *testing.T, s PasskeyStore, u *user.User, confirm bool, count uint32) factor.Passkey {
	t.Helper()
	f := newFactor(t, u, factor.KindWebAuthn)
	f.Secret = ""
	if err := s.CreateFactor(t.Context(), f); err != nil {
		t.Fatalf("CreateFactor: %v", err)
	}
	p := factor.Passkey{FactorID: f.ID, UserID: u.ID, CredentialKey: newHash(), Credential: []byte(`{"id":"` + newHash() + `"}`), SignCount: count}
	if confirm {
		if ok, err := s.ConfirmPasskey(t.Context(), p, baseTime); !ok || err != nil {
			t.Fatalf("ConfirmPasskey = %v, %v", ok, err)
		}
	}
	return p
}

func testPasskeyConfirm(t *testing.T, s PasskeyStore) {
	ctx := t.Context()
	u, other := seedUser(t, s), seedUser(t, s)
	p := addPasskey(t, s, u, false, 3)
	if list, err := s.Passkeys(ctx, u.ID); len(list) != 0 || err != nil {
		t.Fatalf("Passkeys before confirmation = %v, %v", list, err)
	}
	_, err := s.PasskeyByCredential(ctx, p.CredentialKey)
	wantErr(t, "PasskeyByCredential(unconfirmed)", err, factor.ErrNotFound)
	theirs := p
	theirs.UserID = other.ID
	if ok, err := s.ConfirmPasskey(ctx, theirs, baseTime); ok || err != nil {
		t.Fatalf("ConfirmPasskey as another user = %v, %v; want false", ok, err)
	}
	totp := addFactor(t, s, u, false)
	if ok, err := s.ConfirmPasskey(ctx, factor.Passkey{FactorID: totp.ID, UserID: u.ID, CredentialKey: newHash(), Credential: []byte("{}")}, baseTime); ok || err != nil {
		t.Fatalf("ConfirmPasskey of a totp factor = %v, %v; want false", ok, err)
	}
	if ok, err := s.ConfirmPasskey(ctx, p, baseTime); !ok || err != nil {
		t.Fatalf("ConfirmPasskey = %v, %v", ok, err)
	}
	if ok, err := s.ConfirmPasskey(ctx, p, baseTime); ok || err != nil {
		t.Fatalf("ConfirmPasskey again = %v, %v; want false", ok, err)
	}
	if f := getFactor(t, s, u.ID, p.FactorID); !f.Active() || f.Kind != factor.KindWebAuthn {
		t.Errorf("factor after ConfirmPasskey = %+v", f)
	}
	list, err := s.Passkeys(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].FactorID != p.FactorID {
		t.Fatalf("Passkeys = %+v, %v", list, err)
	}
	got, err := s.PasskeyByCredential(ctx, p.CredentialKey)
	if err != nil || got.UserID != u.ID || got.FactorID != p.FactorID || string(got.Credential) != string(p.Credential) || got.SignCount != 3 {
		t.Fatalf("PasskeyByCredential = %+v, %v", got, err)
	}
	if list, _ := s.Passkeys(ctx, other.ID); len(list) != 0 {
		t.Errorf("another user's Passkeys = %+v", list)
	}
	_, err = s.PasskeyByCredential(ctx, newHash())
	wantErr(t, "PasskeyByCredential(unknown)", err, factor.ErrNotFound)
}

func testPasskeyDuplicate(t *testing.T, s PasskeyStore) {
	u, other := seedUser(t, s), seedUser(t, s)
	p := addPasskey(t, s, u, true, 0)
	dup := addPasskey(t, s, other, false, 0)
	dup.CredentialKey = p.CredentialKey
	ok, err := s.ConfirmPasskey(t.Context(), dup, baseTime)
	if ok || !errors.Is(err, factor.ErrDuplicateCredential) {
		t.Fatalf("ConfirmPasskey of a registered credential = %v, %v; want ErrDuplicateCredential", ok, err)
	}
	if f := getFactor(t, s, other.ID, dup.FactorID); f.Active() {
		t.Error("the factor of a refused credential was confirmed")
	}
}

func testSignCount(t *testing.T, s PasskeyStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	p, zero := addPasskey(t, s, u, true, 3), addPasskey(t, s, u, true, 0)
	at := baseTime.Add(time.Hour)
	for _, c := range []struct {
		id    string
		count uint32
		want  bool
	}{{p.FactorID, 3, false}, {p.FactorID, 2, false}, {p.FactorID, 0, false}, {p.FactorID, 4, true}, {p.FactorID, 4, false},
		{zero.FactorID, 0, true}, {zero.FactorID, 0, true}, {zero.FactorID, 1, true}, {zero.FactorID, 0, false}} {
		if ok, err := s.AcceptSignCount(ctx, c.id, c.count, at); ok != c.want || err != nil {
			t.Errorf("AcceptSignCount(%d) = %v, %v; want %v", c.count, ok, err, c.want)
		}
	}
	got, _ := s.PasskeyByCredential(ctx, p.CredentialKey)
	if got == nil || got.SignCount != 4 {
		t.Errorf("sign count after the uses = %+v, want 4", got)
	}
	checkTimePtr(t, "passkey last_used_at", getFactor(t, s, u.ID, p.FactorID).LastUsedAt, &at)
	if ok, err := s.AcceptSignCount(ctx, newID(t), 9, at); ok || err != nil {
		t.Errorf("AcceptSignCount of a missing passkey = %v, %v", ok, err)
	}
}

func testConcurrentSignCount(t *testing.T, s PasskeyStore) {
	p := addPasskey(t, s, seedUser(t, s), true, 1)
	oneWins(t, "AcceptSignCount of one counter", func() (bool, error) {
		return s.AcceptSignCount(t.Context(), p.FactorID, 2, baseTime)
	})
}

func newCeremony(kind, userID string) factor.Ceremony {
	return factor.Ceremony{Hash: newHash(), Kind: kind, UserID: userID, Session: []byte(`{"challenge":"` + newHash() + `"}`),
		CreatedAt: baseTime, ExpiresAt: baseTime.Add(5 * time.Minute)}
}

func testCeremonies(t *testing.T, s PasskeyStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	reg, anon, expired := newCeremony(factor.CeremonyRegistration, u.ID), newCeremony(factor.CeremonyPasswordless, ""), newCeremony(factor.CeremonyMFA, u.ID)
	expired.ExpiresAt = baseTime.Add(time.Second)
	for _, c := range []factor.Ceremony{reg, anon, expired} {
		if err := s.CreateCeremony(ctx, c); err != nil {
			t.Fatalf("CreateCeremony: %v", err)
		}
	}
	now := baseTime.Add(time.Minute)
	got, err := s.Ceremony(ctx, reg.Hash, factor.CeremonyRegistration, now)
	if err != nil || got.UserID != u.ID || string(got.Session) != string(reg.Session) {
		t.Fatalf("Ceremony = %+v, %v", got, err)
	}
	checkTime(t, "ceremony expires_at", got.ExpiresAt, reg.ExpiresAt)
	_, err = s.Ceremony(ctx, reg.Hash, factor.CeremonyPasswordless, now)
	wantErr(t, "Ceremony(other kind)", err, factor.ErrNotFound)
	_, err = s.Ceremony(ctx, expired.Hash, factor.CeremonyMFA, now)
	wantErr(t, "Ceremony(expired)", err, factor.ErrNotFound)
	_, err = s.TakeCeremony(ctx, expired.Hash, factor.CeremonyMFA, now)
	wantErr(t, "TakeCeremony(expired)", err, factor.ErrNotFound)
	got, err = s.TakeCeremony(ctx, anon.Hash, factor.CeremonyPasswordless, now)
	if err != nil || got.UserID != "" || string(got.Session) != string(anon.Session) {
		t.Fatalf("TakeCeremony = %+v, %v", got, err)
	}
	_, err = s.TakeCeremony(ctx, anon.Hash, factor.CeremonyPasswordless, now)
	wantErr(t, "TakeCeremony(used)", err, factor.ErrNotFound)
	_, err = s.Ceremony(ctx, anon.Hash, factor.CeremonyPasswordless, now)
	wantErr(t, "Ceremony(used)", err, factor.ErrNotFound)
	if n, err := s.DeleteExpiredCeremonies(ctx, now); n != 1 || err != nil {
		t.Errorf("DeleteExpiredCeremonies = %d, %v; want 1", n, err)
	}
	wantErr(t, "CreateCeremony(missing user)", s.CreateCeremony(ctx, newCeremony(factor.CeremonyMFA, newID(t))), user.ErrNotFound)
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Ceremony(ctx, reg.Hash, factor.CeremonyRegistration, now)
	wantErr(t, "Ceremony(deleted user)", err, factor.ErrNotFound)
}

func testConcurrentCeremony(t *testing.T, s PasskeyStore) {
	c := newCeremony(factor.CeremonyPasswordless, "")
	if err := s.CreateCeremony(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	race(func(int) {
		_, err := s.TakeCeremony(t.Context(), c.Hash, c.Kind, baseTime)
		switch {
		case err == nil:
			wins.Add(1)
		case !errors.Is(err, factor.ErrNotFound):
			t.Errorf("TakeCeremony: %v", err)
		}
	})
	if wins.Load() != 1 {
		t.Errorf("TakeCeremony of one ceremony: %d callers won, want exactly 1", wins.Load())
	}
}

func testDeletePasskeyFactor(t *testing.T, s PasskeyStore) {
	ctx := t.Context()
	u := seedUser(t, s)
	p := addPasskey(t, s, u, true, 0)
	if ok, err := s.DeleteFactor(ctx, u.ID, p.FactorID); !ok || err != nil {
		t.Fatalf("DeleteFactor = %v, %v", ok, err)
	}
	_, err := s.PasskeyByCredential(ctx, p.CredentialKey)
	wantErr(t, "PasskeyByCredential(deleted factor)", err, factor.ErrNotFound)
	// The credential can be registered again, to a new factor.
	again := addPasskey(t, s, u, false, 0)
	again.CredentialKey = p.CredentialKey
	if ok, err := s.ConfirmPasskey(ctx, again, baseTime); !ok || err != nil {
		t.Errorf("ConfirmPasskey of a removed credential = %v, %v", ok, err)
	}
}
