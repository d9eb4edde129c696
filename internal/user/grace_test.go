package user_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

const grace = 10 * time.Second

// withGrace builds a second service on the env's store with the refresh
// reuse grace g and the production denylist, so a revoked family's access
// tokens are refused too.
func (e *env) withGrace(t *testing.T, g time.Duration) *flows.Service {
	t.Helper()
	dl := e.denylist(t)
	return e.with(t, func(d *flows.Deps) { d.Denylist = dl }, user.Config{RefreshReuseGrace: g})
}

// signIn signs alice in on svc and refreshes once: the first session and
// the child its refresh token was traded for.
func (e *env) signIn(t *testing.T, svc *flows.Service) (first, child *user.Session) {
	t.Helper()
	ctx := context.Background()
	e.create(t, "alice@example.com", user.RoleUser)
	first, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if child, err = svc.Refresh(ctx, first.RefreshToken); err != nil {
		t.Fatal(err)
	}
	return first, child
}

// wantLive checks that each session's access token validates, in the
// session (family) sid, and that its refresh token still refreshes.
func wantLive(t *testing.T, svc *flows.Service, sid string, sessions map[string]*user.Session) {
	t.Helper()
	ctx := context.Background()
	for name, s := range sessions {
		v, err := svc.Validate(ctx, s.AccessToken)
		if err != nil {
			t.Errorf("%s: access token: %v", name, err)
		} else if v.Claims.SessionID != sid {
			t.Errorf("%s: session %q, want the family %q", name, v.Claims.SessionID, sid)
		}
		if _, err := svc.Refresh(ctx, s.RefreshToken); err != nil {
			t.Errorf("%s: refresh: %v", name, err)
		}
	}
}

// wantDead checks that neither token of each session is accepted any more.
func wantDead(t *testing.T, svc *flows.Service, sessions map[string]*user.Session) {
	t.Helper()
	ctx := context.Background()
	for name, s := range sessions {
		if _, err := svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s: access token of a revoked family: %v, want %v", name, err, user.ErrInvalidToken)
		}
		if _, err := svc.Refresh(ctx, s.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s: refresh token of a revoked family: %v, want %v", name, err, user.ErrInvalidToken)
		}
	}
}

func sid(t *testing.T, svc *flows.Service, s *user.Session) string {
	t.Helper()
	v, err := svc.Validate(context.Background(), s.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return v.Claims.SessionID
}

// Two tabs crossing a rotation: the second use of a token within the grace
// gets a sibling session of the same family, and the family (the first
// use's child included) stays alive.
func TestRefreshReuseWithinGrace(t *testing.T) {
	e := newEnv(t)
	svc := e.withGrace(t, grace)
	first, child := e.signIn(t, svc)
	family := sid(t, svc, first)
	e.clock.Add(grace - time.Millisecond)
	sibling, err := svc.Refresh(context.Background(), first.RefreshToken)
	if err != nil {
		t.Fatalf("reuse within the grace: %v", err)
	}
	if sibling.RefreshToken == child.RefreshToken || sibling.AccessToken == child.AccessToken {
		t.Fatal("the reuse handed out the first use's tokens again")
	}
	wantLive(t, svc, family, map[string]*user.Session{"first child": child, "sibling": sibling})
}

// Past the grace, reuse is a leak as before: the whole family is revoked,
// siblings handed out within the grace included. The grace runs from the
// token's own first use, not from a later graced reuse.
func TestRefreshReuseAfterGraceRevokesFamily(t *testing.T) {
	e := newEnv(t)
	svc := e.withGrace(t, grace)
	first, child := e.signIn(t, svc)
	ctx := context.Background()
	e.clock.Add(grace / 2)
	sibling, err := svc.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("reuse within the grace: %v", err)
	}
	e.clock.Add(grace / 2) // grace after the first use, half of it after the sibling's
	if _, err := svc.Refresh(ctx, first.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("reuse after the grace: %v, want %v", err, user.ErrInvalidToken)
	}
	wantDead(t, svc, map[string]*user.Session{"first": first, "first child": child, "sibling": sibling})
}

// Grace 0 is today's strict rule: a reuse in the same instant revokes the
// family.
func TestRefreshReuseGraceZeroIsStrict(t *testing.T) {
	e := newEnv(t)
	svc := e.withGrace(t, 0)
	first, child := e.signIn(t, svc)
	if _, err := svc.Refresh(context.Background(), first.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("reuse with grace 0: %v, want %v", err, user.ErrInvalidToken)
	}
	wantDead(t, svc, map[string]*user.Session{"first": first, "child": child})
}

// The grace does not revive a token that is revoked (logout) or expired.
func TestRefreshReuseGraceRefusesRevokedAndExpired(t *testing.T) {
	e := newEnv(t)
	svc := e.withGrace(t, grace)
	first, child := e.signIn(t, svc)
	ctx := context.Background()
	if err := svc.Revoke(ctx, child.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, first.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("reuse within the grace of a logged-out family: %v, want %v", err, user.ErrInvalidToken)
	}

	s, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(s.RefreshExpiresAt.Sub(e.clock.Now()) - time.Second)
	if _, err := svc.Refresh(ctx, s.RefreshToken); err != nil {
		t.Fatalf("refresh a second before expiry: %v", err)
	}
	e.clock.Add(2 * time.Second)
	if _, err := svc.Refresh(ctx, s.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("reuse within the grace of an expired token: %v, want %v", err, user.ErrInvalidToken)
	}
}

// Concurrent refreshes of one token (the losers of the race to mark it
// used) all get a session of the family, and every one of them works.
func TestConcurrentRefreshWithinGrace(t *testing.T) {
	e := newEnv(t)
	svc := e.withGrace(t, grace)
	e.create(t, "alice@example.com", user.RoleUser)
	ctx := context.Background()
	s, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	family := sid(t, svc, s)
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string]*user.Session{}
	)
	for i := range n {
		wg.Go(func() {
			next, err := svc.Refresh(ctx, s.RefreshToken)
			if err != nil {
				t.Errorf("concurrent refresh %d: %v", i, err)
				return
			}
			mu.Lock()
			got[next.RefreshToken] = next
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d distinct sessions from %d concurrent refreshes", len(got), n)
	}
	live := map[string]*user.Session{}
	for _, next := range got {
		live[next.RefreshToken[:8]] = next
	}
	wantLive(t, svc, family, live)
}
