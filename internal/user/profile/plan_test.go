package profile

import (
	"github.com/usersvc/usersvc/internal/user"
	"slices"
	"testing"
	"time"
)

// The plan step of Update is pure: it can be checked without a store, a
// hasher or a clock.
func TestPlanUpdate(t *testing.T) {
	u := &user.User{ID: "0190a8e4-0000-7000-8000-000000000001", Email: "alice@example.com", Name: "Alice",
		Role: user.RoleUser, Status: user.StatusActive, PasswordHash: "h0", SessionVersion: 3}
	self, system := user.Actor{ID: u.ID, Role: user.RoleUser}, user.SystemActor
	policy := func(pw, _ string) string {
		if len(pw) < 8 {
			return "is too short"
		}
		return ""
	}
	str := func(s string) *string { return &s }
	fieldsOf := func(err error) []string {
		e := user.AsError(err)
		var fs []string
		for f := range e.Fields {
			fs = append(fs, f)
		}
		slices.Sort(fs)
		return fs
	}

	// Own email change: the current password is needed, and named when missing.
	_, err := planUpdate(self, u, user.UpdateInput{Email: str("ALICE2@example.com")}, policy)
	if got := fieldsOf(err); !slices.Equal(got, []string{"current_password"}) {
		t.Errorf("own email change without current password: fields %v", got)
	}
	p, err := planUpdate(self, u, user.UpdateInput{Email: str("ALICE2@example.com"), CurrentPassword: str("x")}, policy)
	if err != nil || !p.needCurrent || *p.email != "alice2@example.com" || p.readHash != "h0" {
		t.Errorf("own email change: %+v, %v", p, err)
	}
	// The same address in another spelling is no change, so no password.
	if p, err := planUpdate(self, u, user.UpdateInput{Email: str(" Alice@EXAMPLE.com")}, policy); err != nil || p.needCurrent {
		t.Errorf("unchanged email: %+v, %v", p, err)
	}
	// An internal caller needs none; bad values are all named at once.
	if p, err := planUpdate(system, u, user.UpdateInput{Email: str("bob@example.com")}, policy); err != nil || p.needCurrent {
		t.Errorf("system email change: %+v, %v", p, err)
	}
	bad, badStatus := user.Role("root"), user.Status("gone")
	_, err = planUpdate(system, u, user.UpdateInput{Name: str(" "), Email: str("x"), Password: str("short"), Role: &bad, Status: &badStatus}, policy)
	if got := fieldsOf(err); !slices.Equal(got, []string{"email", "name", "password", "role", "status"}) {
		t.Errorf("invalid values: fields %v", got)
	}

	// Applying: only real changes are reported; a disable and a new password
	// each end the sessions.
	disabled, admin := user.StatusDisabled, user.RoleAdmin
	p, err = planUpdate(system, u, user.UpdateInput{Name: str("Alice"), Status: &disabled, Password: str("long enough")}, policy)
	if err != nil {
		t.Fatal(err)
	}
	if !p.removesAdmin() {
		t.Error("a disable does not count as removing an admin")
	}
	cur := *u
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	changed := p.applyTo(&cur, "h1", now)
	if !slices.Equal(changed, []string{"status", "password"}) || cur.SessionVersion != 5 || cur.PasswordHash != "h1" ||
		cur.Status != user.StatusDisabled || !cur.UpdatedAt.Equal(now) {
		t.Errorf("applied %v: %+v", changed, cur)
	}
	if p, _ := planUpdate(system, u, user.UpdateInput{Role: &admin}, policy); p.removesAdmin() {
		t.Error("a promotion counts as removing an admin")
	}
}
