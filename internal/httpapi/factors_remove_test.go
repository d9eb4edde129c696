package httpapi_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// enrolConfirmed enrols and confirms a TOTP factor for s over the API and
// returns its id and secret.
func (e *env) enrolConfirmed(s session) (string, string) {
	e.t.Helper()
	var enrol totpEnrolment
	e.Do("POST", "/user/"+s.ID+"/factors/totp", s.Access, map[string]any{"name": "phone"}).WantStatus(201).Decode(&enrol)
	e.Do("POST", "/user/"+s.ID+"/factors/"+enrol.FactorID+"/confirmation", s.Access,
		map[string]any{"code": totpCode(e.t, enrol.Secret, time.Now())}).WantStatus(200)
	return enrol.FactorID, enrol.Secret
}

// factorCount is how many factors and recovery codes the owner sees.
func (e *env) factorCount(s session) (int, int) {
	e.t.Helper()
	var list struct {
		Factors []struct{} `json:"factors"`
		Left    int        `json:"recovery_codes_left"`
	}
	e.Do("GET", "/user/"+s.ID+"/factors", s.Access, nil).WantStatus(200).Decode(&list)
	return len(list.Factors), list.Left
}

// TestRemoveFactorsOverHTTP: DELETE /user/{id}/factors/{factor_id} and
// DELETE /user/{id}/factors answer 204 to the owner (after a sign-in with
// the factor) and to an admin; 401 reauthentication_required to the
// owner's password-only token, 403 to another user, 404 for a factor the
// user has not; every answer checked against api/openapi.yaml.
func TestRemoveFactorsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")
	base := "/user/" + alice.ID + "/factors"

	id, _ := e.enrolConfirmed(alice)
	e.Do("DELETE", base+"/"+id, alice.Access, nil).WantError(401, "reauthentication_required")
	e.Do("DELETE", base+"/"+id, bob.Access, nil).WantError(403, "permission_denied")
	e.Do("DELETE", base, bob.Access, nil).WantError(403, "permission_denied")
	e.Do("DELETE", base+"/"+uuid.NewString(), e.admin.Access, nil).WantError(404, "not_found")
	e.Do("DELETE", base+"/"+id, e.admin.Access, nil).WantStatus(204)
	if n, left := e.factorCount(alice); n != 0 || left != 0 {
		t.Fatalf("after the admin's removal: %d factors, %d codes", n, left)
	}

	_, secret := e.enrolConfirmed(alice)
	ch := e.challengeOf(alice.Email, userPassword)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "mfa", "mfa_ticket": ch.MFATicket, "factor": "totp",
		"code": totpCode(t, secret, time.Now().Add(factor.TOTPPeriod))}).WantStatus(200).Decode(&tok)
	e.Do("DELETE", base, tok.AccessToken, nil).WantStatus(204)
	if n, left := e.factorCount(alice); n != 0 || left != 0 {
		t.Fatalf("after the owner's removal: %d factors, %d codes", n, left)
	}
	e.login(alice.Email, userPassword) // tokens again, no challenge
}

// TestAdminWritesNeedStepUpOverHTTP: with a one-second window, an admin
// token whose sign-in is older is 401 reauthentication_required on every
// write to another account, and a fresh sign-in's token may; a read needs
// no step-up. (auth_time has a one-second resolution: the test waits two.)
func TestAdminWritesNeedStepUpOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{Config: user.Config{ReauthWindow: time.Second}})
	bob := e.register("bob@example.com", "Bob")
	time.Sleep(2100 * time.Millisecond)
	old := e.admin.Access
	base := "/user/" + bob.ID
	e.Do("GET", base, old, nil).WantStatus(200)
	e.Do("PUT", base, old, map[string]any{"name": "Robert"}).WantError(401, "reauthentication_required")
	e.Do("DELETE", base+"/sessions", old, nil).WantError(401, "reauthentication_required")
	e.Do("DELETE", base+"/factors", old, nil).WantError(401, "reauthentication_required")
	e.Do("DELETE", base, old, nil).WantError(401, "reauthentication_required")
	e.Do("POST", "/user", old, map[string]any{"email": "carl@example.com", "password": userPassword, "name": "Carl"}).
		WantError(401, "reauthentication_required")

	fresh := e.login(e.admin.Email, adminPassword).Access
	e.Do("PUT", base, fresh, map[string]any{"name": "Robert"}).WantStatus(200)
	e.Do("DELETE", base+"/sessions", fresh, nil).WantStatus(204)
	e.Do("DELETE", base, fresh, nil).WantStatus(204)
}
