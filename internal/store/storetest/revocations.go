package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/revocation"
)

// RunRevocations is the contract of revocation.Store. open must return an
// empty store with the schema in place.
func RunRevocations(t *testing.T, open func(t *testing.T) revocation.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s revocation.Store)
	}{
		{"PutAndCheck", testRevocationPutAndCheck},
		{"LaterExpiryWins", testRevocationLaterExpiryWins},
		{"ListAndSweep", testRevocationListAndSweep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func revoked(t *testing.T, s revocation.Store, now time.Time, keys ...string) bool {
	t.Helper()
	ok, err := s.HasRevocation(t.Context(), now, keys...)
	if err != nil {
		t.Fatalf("HasRevocation(%v): %v", keys, err)
	}
	return ok
}

func testRevocationPutAndCheck(t *testing.T, s revocation.Store) {
	jti, sid := newID(t), "sid:"+newID(t)
	if err := s.PutRevocation(t.Context(), jti, baseTime.Add(time.Minute)); err != nil {
		t.Fatalf("PutRevocation: %v", err)
	}
	if err := s.PutRevocation(t.Context(), sid, baseTime.Add(time.Hour)); err != nil {
		t.Fatalf("PutRevocation: %v", err)
	}
	other := newID(t)
	switch {
	case !revoked(t, s, baseTime, jti):
		t.Error("revoked jti not reported")
	case !revoked(t, s, baseTime, other, sid):
		t.Error("revoked sid among other keys not reported")
	case revoked(t, s, baseTime, other):
		t.Error("unrevoked key reported")
	case revoked(t, s, baseTime):
		t.Error("no keys reported revoked")
	case revoked(t, s, baseTime.Add(time.Minute), jti):
		t.Error("revocation reported at its expiry")
	case !revoked(t, s, baseTime.Add(time.Minute), jti, sid):
		t.Error("longer revocation not reported")
	}
}

func testRevocationLaterExpiryWins(t *testing.T, s revocation.Store) {
	key := newID(t)
	for _, until := range []time.Time{baseTime.Add(time.Hour), baseTime.Add(time.Minute)} {
		if err := s.PutRevocation(t.Context(), key, until); err != nil {
			t.Fatalf("PutRevocation: %v", err)
		}
	}
	if !revoked(t, s, baseTime.Add(30*time.Minute), key) {
		t.Error("a second, shorter revocation shortened the first")
	}
}

func testRevocationListAndSweep(t *testing.T, s revocation.Store) {
	ctx := t.Context()
	old, live := newID(t), newID(t)
	if err := s.PutRevocation(ctx, old, baseTime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRevocation(ctx, live, baseTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	now := baseTime.Add(time.Minute)
	entries, err := s.Revocations(ctx, now)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	if len(entries) != 1 || entries[0].Key != live {
		t.Fatalf("Revocations = %+v, want only %s", entries, live)
	}
	checkTime(t, "Until", entries[0].Until, baseTime.Add(time.Hour))
	n, err := s.DeleteExpiredRevocations(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRevocations = %d, %v; want 1", n, err)
	}
	entries, _ = s.Revocations(ctx, baseTime)
	if keys := func() []string {
		var ks []string
		for _, e := range entries {
			ks = append(ks, e.Key)
		}
		return ks
	}(); !slices.Equal(keys, []string{live}) {
		t.Errorf("after the sweep: %v, want only %s", keys, live)
	}
}
