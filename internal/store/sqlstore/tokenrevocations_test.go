package sqlstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/sdk/auth"
)

// TestTokenRevocations: a revocation lands in the outbox (as a
// token.revoked event) and in the catch-up table, which answers what is in
// force since a time, page by page, and is swept with the denylist.
func TestTokenRevocations(t *testing.T) {
	dialects(t, func(t *testing.T, driver, dsn string) {
		ctx := t.Context()
		s := openTest(t, driver, dsn, true)
		t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		rev := func(at time.Time, sid string) auth.Revocation {
			return auth.Revocation{ID: uuid.Must(uuid.NewV7()).String(), Reason: auth.ReasonLogout, At: at,
				Until: at.Add(16 * time.Minute), SessionID: sid}
		}
		old, a, b := rev(t0.Add(-20*time.Minute), "old"), rev(t0, "a"), rev(t0.Add(time.Second), "b")
		user := auth.Revocation{ID: uuid.Must(uuid.NewV7()).String(), Reason: auth.ReasonPasswordChanged, At: t0.Add(2 * time.Second),
			Until: t0.Add(17 * time.Minute), Subject: uuid.NewString(), SessionVersionBelow: 4}
		for _, r := range []auth.Revocation{old, a, b, user} {
			if err := s.AppendRevocation(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendRevocation(ctx, auth.Revocation{ID: "x", At: t0, Until: t0}); err == nil {
			t.Fatal("a revocation naming nothing was stored")
		}

		got, err := s.RevocationsSince(ctx, t0.Add(-16*time.Minute), t0.Add(time.Minute), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if ids := revIDs(got); !slices.Equal(ids, []string{a.ID, b.ID, user.ID}) {
			t.Fatalf("in force = %v, want %v", ids, []string{a.ID, b.ID, user.ID})
		}
		if got[2].Subject != user.Subject || got[2].SessionVersionBelow != 4 || !got[2].At.Equal(user.At) {
			t.Fatalf("round trip: %+v, want %+v", got[2], user)
		}
		page, err := s.RevocationsSince(ctx, t0.Add(-time.Hour), t0.Add(time.Minute), a.ID, 1)
		if err != nil || !slices.Equal(revIDs(page), []string{b.ID}) {
			t.Fatalf("page after a = %v, %v; want [b]", revIDs(page), err)
		}

		var published []events.Message
		if _, err := s.DrainOutbox(ctx, 100, func(_ context.Context, m []events.Message) error {
			published = append(published, m...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(published) != 4 || published[0].RoutingKey != auth.RevocationRoutingKey {
			t.Fatalf("outbox = %d messages (first %+v), want 4 token.revoked", len(published), published)
		}
		if r, err := auth.ParseRevocation(published[1].Body); err != nil || r.ID != a.ID {
			t.Fatalf("published body: %+v, %v", r, err)
		}

		if _, err := s.DeleteExpiredRevocations(ctx, t0.Add(16*time.Minute+time.Second)); err != nil {
			t.Fatal(err)
		}
		left, err := s.RevocationsSince(ctx, time.Time{}, t0, "", 100)
		if err != nil || !slices.Equal(revIDs(left), []string{user.ID}) {
			t.Fatalf("after the sweep = %v, %v; want [user]", revIDs(left), err)
		}
	})
}

func revIDs(rs []auth.Revocation) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}
