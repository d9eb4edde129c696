package httpapi_test

import (
	"bytes"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
)

type totpEnrolment struct {
	FactorID string `json:"factor_id"`
	Secret   string `json:"secret"`
	URI      string `json:"uri"`
	QRPNG    []byte `json:"qr_png"`
}

type mfaRequired struct {
	MFATicket string   `json:"mfa_ticket"`
	Factors   []string `json:"factors"`
	ExpiresIn int64    `json:"expires_in"`
}

type recoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := factor.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// challengeOf signs in with the password and expects the second-factor
// answer: 403 mfa_required with a ticket and no tokens.
func (e *env) challengeOf(email, pw string) mfaRequired {
	e.t.Helper()
	r := e.Do("POST", "/user/token", "", map[string]any{"email": email, "password": pw})
	r.WantError(403, "mfa_required")
	var ch mfaRequired
	r.Decode(&ch)
	if ch.MFATicket == "" || ch.ExpiresIn <= 0 || strings.Contains(string(r.Body), "access_token") {
		e.t.Fatalf("challenge %s", r.Body)
	}
	return ch
}

// TestTOTPOverHTTP is the slice end to end over HTTP and the gRPC hop:
// enrol (secret, URI, QR), confirm with a code (recovery codes once), a
// password sign-in then answers mfa_required, the ticket with a code
// completes it with amr and auth_time in the token, a replayed code and a
// spent ticket are refused, a recovery code works once, and nobody else
// sees or enrols the factors.
func TestTOTPOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")
	base := "/user/" + alice.ID

	var enrol totpEnrolment
	e.Do("POST", base+"/factors/totp", alice.Access, map[string]any{"name": "phone"}).WantStatus(201).Decode(&enrol)
	if img, err := png.Decode(bytes.NewReader(enrol.QRPNG)); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("QR PNG: %v", err)
	}
	if !strings.HasPrefix(enrol.URI, "otpauth://totp/") || !strings.Contains(enrol.URI, "secret="+enrol.Secret) {
		t.Fatalf("URI %q", enrol.URI)
	}
	e.Do("POST", base+"/factors/totp", bob.Access, map[string]any{}).WantError(403, "permission_denied")
	e.Do("GET", base+"/factors", e.admin.Access, nil).WantError(403, "permission_denied")
	e.login(alice.Email, userPassword) // not active yet: tokens as before

	confirm := base + "/factors/" + enrol.FactorID + "/confirmation"
	e.Do("POST", confirm, alice.Access, map[string]any{"code": "000000"}).WantError(400, "invalid_argument", "code")
	now := time.Now()
	var codes recoveryCodes
	e.Do("POST", confirm, alice.Access, map[string]any{"code": totpCode(t, enrol.Secret, now)}).WantStatus(200).Decode(&codes)
	if len(codes.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %v", codes.RecoveryCodes)
	}
	var list struct {
		Factors []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"factors"`
		Left int `json:"recovery_codes_left"`
	}
	e.Do("GET", base+"/factors", alice.Access, nil).WantStatus(200).Decode(&list)
	if len(list.Factors) != 1 || !list.Factors[0].Active || list.Left != 10 {
		t.Fatalf("factors %+v", list)
	}

	ch := e.challengeOf(alice.Email, userPassword)
	if !slices.Equal(ch.Factors, []string{"totp", "recovery_code"}) {
		t.Errorf("factors %v", ch.Factors)
	}
	grant := func(ticket, kind, code string) map[string]any {
		return map[string]any{"grant_type": "mfa", "mfa_ticket": ticket, "factor": kind, "code": code}
	}
	// The confirmation's code again: a replay.
	e.Do("POST", "/user/token", "", grant(ch.MFATicket, "totp", totpCode(t, enrol.Secret, now))).WantError(401, "unauthenticated")
	next := totpCode(t, enrol.Secret, now.Add(factor.TOTPPeriod))
	r := e.Do("POST", "/user/token", "", grant(ch.MFATicket, "totp", next)).WantStatus(200)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.Decode(&tok)
	var claims struct {
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	jwtClaims(t, tok.AccessToken, &claims)
	if !slices.Equal(claims.AMR, []string{"pwd", "otp", "mfa"}) || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute {
		t.Errorf("claims %+v", claims)
	}
	e.Do("POST", "/user/token", "", grant(ch.MFATicket, "totp", next)).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", grant(e.challengeOf(alice.Email, userPassword).MFATicket, "totp", next)).
		WantError(401, "unauthenticated")

	for i, want := range []int{200, 401} {
		r := e.Do("POST", "/user/token", "", grant(e.challengeOf(alice.Email, userPassword).MFATicket, "recovery_code", codes.RecoveryCodes[0]))
		if i == 0 {
			r.WantStatus(want)
		} else {
			r.WantError(want, "unauthenticated")
		}
	}
	e.Do("POST", base+"/recovery-codes", alice.Access, nil).WantStatus(200).Decode(&codes)
	// Step-up: with a factor enrolled, a password-only sign-in (the token
	// from before the enrolment) may not change the password; the token of
	// the sign-in with the factor may.
	change := map[string]any{"password": "another long passphrase 42", "current_password": userPassword}
	e.Do("PUT", base, alice.Access, change).WantError(401, "reauthentication_required")
	e.Do("PUT", base, tok.AccessToken, change).WantStatus(200)
	e.Send("POST", "/user/token", http.Header{"Content-Type": {"application/json"}},
		`{"grant_type":"mfa","mfa_ticket":"x","factor":"sms","code":"1"}`).WantError(400, "invalid_argument", "factor")
}
