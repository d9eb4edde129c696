package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/user"
)

// TestMFAReseal rotates the key that seals TOTP secrets: a factor enrolled
// under "old" is re-encrypted by `usersvc mfa reseal` under "new", after
// which a configuration with only "new" still checks its codes; a second
// run has nothing to do, and the command refuses to run without keys.
func TestMFAReseal(t *testing.T) {
	e := newEnv(t)
	oldKey, _ := seal.NewKey()
	newKey, _ := seal.NewKey()
	e["USERSVC_MFA_KEYS"] = "old:" + oldKey
	core := openCore(t, e)
	ctx := t.Context()
	u, err := core.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "r@example.com", Password: goodPassword, Name: "R"})
	if err != nil {
		t.Fatal(err)
	}
	owner := user.Actor{ID: u.ID, Role: u.Role}
	enrol, err := core.Service.EnrolTOTP(ctx, owner, u.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}

	e["USERSVC_MFA_KEYS"], e["USERSVC_MFA_KEY_ID"] = "new:"+newKey+",old:"+oldKey, "new"
	r := run(t, e, "", "mfa", "reseal")
	expect(t, r, 0)
	if !strings.Contains(r.stdout, "re-encrypted 1 ") {
		t.Errorf("first run: %s", r)
	}
	fs, err := core.Store.Factors(ctx, u.ID)
	if err != nil || len(fs) != 1 {
		t.Fatal(fs, err)
	}
	if kid, _ := seal.KeyID(fs[0].Secret); kid != "new" {
		t.Errorf("secret sealed under %q after reseal, want new", kid)
	}
	if r := run(t, e, "", "mfa", "reseal"); !strings.Contains(r.stdout, "re-encrypted 0 ") {
		t.Errorf("second run: %s", r)
	}

	only := newEnv(t)
	only["USERSVC_DATA_DIR"], only["USERSVC_MFA_KEYS"] = e["USERSVC_DATA_DIR"], "new:"+newKey
	code, _ := factor.TOTPCode(enrol.Secret, time.Now())
	if _, err := openCore(t, only).Service.ConfirmTOTP(ctx, owner, u.ID, enrol.FactorID, code); err != nil {
		t.Errorf("the factor under the new key alone: %v", err)
	}

	delete(e, "USERSVC_MFA_KEYS")
	delete(e, "USERSVC_MFA_KEY_ID")
	expect(t, run(t, e, "", "mfa", "reseal"), 1, "USERSVC_MFA_KEYS")
}
