package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor/webauthntest"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

type passkeyChallenge struct {
	MFATicket string          `json:"mfa_ticket"`
	Factors   []string        `json:"factors"`
	WebAuthn  json.RawMessage `json:"webauthn"`
}

// wantAMR decodes a token answer and checks its access token's amr.
func wantAMR(t *testing.T, r interface{ Decode(any) }, amr []string) {
	t.Helper()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	r.Decode(&tok)
	var claims struct {
		AMR []string `json:"amr"`
	}
	jwtClaims(t, tok.AccessToken, &claims)
	if !slices.Equal(claims.AMR, amr) || tok.RefreshToken == "" {
		t.Errorf("amr %v (refresh token %t), want %v", claims.AMR, tok.RefreshToken != "", amr)
	}
}

// TestPasskeysOverHTTP: register a passkey (options, attestation as
// credential, recovery codes once), sign in with the password and the
// passkey (mfa_required carries the assertion options; amr pwd hwk mfa),
// sign in passwordless (amr hwk mfa), and see replays, another origin and
// a code in place of the assertion refused — every answer checked against
// api/openapi.yaml.
func TestPasskeysOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")
	base := "/user/" + alice.ID
	a := webauthntest.New(stack.PublicURL)

	var reg struct {
		FactorID string          `json:"factor_id"`
		Options  json.RawMessage `json:"options"`
	}
	e.Do("POST", base+"/factors/webauthn", alice.Access, map[string]any{"name": "laptop"}).WantStatus(201).Decode(&reg)
	e.Do("POST", base+"/factors/webauthn", bob.Access, map[string]any{}).WantError(403, "permission_denied")
	att, err := a.Register(reg.Options)
	if err != nil {
		t.Fatal(err)
	}
	confirm := base + "/factors/" + reg.FactorID + "/confirmation"
	var codes recoveryCodes
	e.Do("POST", confirm, alice.Access, map[string]any{"credential": att}).WantStatus(200).Decode(&codes)
	if len(codes.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %v", codes.RecoveryCodes)
	}
	e.Do("POST", confirm, alice.Access, map[string]any{"credential": att}).WantError(409, "failed_precondition")

	var ch passkeyChallenge
	e.Do("POST", "/user/token", "", map[string]any{"email": alice.Email, "password": userPassword}).
		WantError(403, "mfa_required")
	r := e.Do("POST", "/user/token", "", map[string]any{"email": alice.Email, "password": userPassword})
	r.Decode(&ch)
	if !slices.Equal(ch.Factors, []string{"webauthn", "recovery_code"}) || len(ch.WebAuthn) == 0 {
		t.Fatalf("challenge %s", r.Body)
	}
	grant := func(ticket string, cred json.RawMessage) map[string]any {
		return map[string]any{"grant_type": "mfa", "mfa_ticket": ticket, "factor": "webauthn", "credential": cred}
	}
	assertion, err := a.Assert(ch.WebAuthn)
	if err != nil {
		t.Fatal(err)
	}
	e.Send("POST", "/user/token", jsonHeader(), `{"grant_type":"mfa","mfa_ticket":"`+ch.MFATicket+`","factor":"webauthn","code":"123456"}`).
		WantError(400, "invalid_argument", "code", "credential")
	a.Origin = "https://evil.example.net"
	phished, _ := a.Assert(ch.WebAuthn)
	a.Origin = stack.PublicURL
	e.Do("POST", "/user/token", "", grant(ch.MFATicket, phished)).WantError(401, "unauthenticated")
	wantAMR(t, e.Do("POST", "/user/token", "", grant(ch.MFATicket, assertion)).WantStatus(200), []string{"pwd", "hwk", "mfa"})
	e.Do("POST", "/user/token", "", grant(ch.MFATicket, assertion)).WantError(401, "unauthenticated")
	var ch2 passkeyChallenge
	e.Do("POST", "/user/token", "", map[string]any{"email": alice.Email, "password": userPassword}).Decode(&ch2)
	e.Do("POST", "/user/token", "", grant(ch2.MFATicket, assertion)).WantError(401, "unauthenticated")

	var pc struct {
		Ceremony  string          `json:"ceremony"`
		ExpiresIn int64           `json:"expires_in"`
		Options   json.RawMessage `json:"options"`
	}
	e.Do("POST", "/user/token/webauthn", "", nil).WantStatus(200).Decode(&pc)
	if pc.Ceremony == "" || pc.ExpiresIn <= 0 {
		t.Fatalf("passwordless challenge %+v", pc)
	}
	pa, err := a.Assert(pc.Options)
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]any{"grant_type": "webauthn", "ceremony": pc.Ceremony, "credential": pa}
	wantAMR(t, e.Do("POST", "/user/token", "", pw).WantStatus(200), []string{"hwk", "mfa"})
	e.Do("POST", "/user/token", "", pw).WantError(400, "invalid_argument", "ceremony")
	e.Do("POST", "/user/token/webauthn", "", nil).WantStatus(200).Decode(&pc)
	pw = map[string]any{"grant_type": "webauthn", "ceremony": pc.Ceremony, "credential": pa}
	e.Do("POST", "/user/token", "", pw).WantError(400, "invalid_argument", "credential")
	e.Send("GET", "/user/token/webauthn", nil, "").WantError(405, "method_not_allowed")
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

// TestPasswordlessBeginSpendsTheSignInBudget: beginning a passwordless
// sign-in spends the per-client budget of POST /user/token, so neither
// door gives more tries than the other.
func TestPasswordlessBeginSpendsTheSignInBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		c.RateLimits = []httpapi.RateLimit{{Method: "POST", Path: "/user/token",
			PerIP: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Minute})}}
	})
	e.Do("POST", "/user/token/webauthn", "", nil).WantStatus(200)
	e.Do("POST", "/user/token/webauthn", "", nil).WantStatus(200)
	e.Do("POST", "/user/token/webauthn", "", nil).WantError(429, "resource_exhausted")
	e.Do("POST", "/user/token", "", map[string]any{"email": "x@example.com", "password": "wrong password!!"}).
		WantError(429, "resource_exhausted")
}
