package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/user"
)

func TestIssueToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")

	for _, body := range []map[string]any{
		{"email": "alice@example.com", "password": userPassword},
		{"grant_type": "password", "email": "ALICE@example.com", "password": userPassword},
	} {
		r := e.Do("POST", "/user/token", "", body).WantStatus(200)
		var tok apiclient.Token
		r.Decode(&tok)
		if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn < 890 || tok.ExpiresIn > 900 {
			t.Errorf("token response %+v", tok)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		e.Do("GET", "/user/"+alice.ID, tok.AccessToken, nil).WantStatus(200)
	}

	// Wrong password and unknown email are indistinguishable.
	wrong := e.Do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": "not the password"}).
		WantError(401, "unauthenticated")
	unknown := e.Do("POST", "/user/token", "", map[string]any{"email": "nobody@example.com", "password": "not the password"}).
		WantError(401, "unauthenticated")
	if wrong.Error.Message != unknown.Error.Message {
		t.Errorf("messages differ: %q vs %q", wrong.Error.Message, unknown.Error.Message)
	}

	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{}`).WantError(400, "invalid_argument", "email", "password")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"grant_type":"client_credentials"}`).
		WantError(400, "invalid_argument", "client_id", "client_secret")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"grant_type":"authorization_code"}`).
		WantError(400, "invalid_argument", "grant_type")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"grant_type":"refresh_token"}`).
		WantError(400, "invalid_argument", "refresh_token")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"grant_type":"refresh_token","refresh_token":"x","email":"a@b.c","password":"p"}`).
		WantError(400, "invalid_argument", "email", "password")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"email":"a@b.c","password":"p","refresh_token":"x"}`).
		WantError(400, "invalid_argument", "refresh_token")
}

// TestRefreshRotation: each refresh token works once; presenting a used one
// again is theft by assumption and kills the whole family, including the
// newest token the legitimate client holds.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	refresh := func(rt string) *apiclient.Response {
		return e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": rt})
	}

	var second, third apiclient.Token
	refresh(alice.Refresh).WantStatus(200).Decode(&second)
	if second.RefreshToken == alice.Refresh || second.AccessToken == "" {
		t.Fatalf("not rotated: %+v", second)
	}
	e.Do("GET", "/user/"+alice.ID, second.AccessToken, nil).WantStatus(200)
	refresh(second.RefreshToken).WantStatus(200).Decode(&third)

	// Reuse of the first token: refused, and the family's newest dies too.
	refresh(alice.Refresh).WantError(401, "unauthenticated")
	refresh(third.RefreshToken).WantError(401, "unauthenticated")
	refresh("never-issued").WantError(401, "unauthenticated")

	// A fresh sign-in starts a new, unaffected family.
	e.login("alice@example.com", userPassword)
}

// TestRevokeToken: after logout the refresh token is dead; the API needs no
// bearer token for it, and an unknown token is not an error.
func TestRevokeToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	other := e.login("alice@example.com", userPassword)

	e.Do("DELETE", "/user/token", "", map[string]any{"refresh_token": alice.Refresh}).WantStatus(204)
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	// Logout ends one session (family), not the user's other sign-ins.
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": other.Refresh}).
		WantStatus(200)

	e.Do("DELETE", "/user/token", "", map[string]any{"refresh_token": alice.Refresh}).WantStatus(204)
	e.Do("DELETE", "/user/token", "", map[string]any{"refresh_token": "never-issued"}).WantStatus(204)
	e.Send("DELETE", "/user/token", apiclient.JSONHeader(""), `{}`).WantError(400, "invalid_argument", "refresh_token")
}

// TestPasswordReset walks the whole flow: request, mail, reset, and the end
// of every earlier session.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")

	// Unknown and registered emails get the same answer; only one mail goes out.
	e.Do("POST", "/user/password", "", map[string]any{"email": "nobody@example.com"}).WantStatus(202)
	if n := e.mailCount(resetSubject, 0); n != 0 {
		t.Errorf("%d mails for an unknown address", n)
	}
	e.Do("POST", "/user/password", "", map[string]any{"email": "Alice@Example.com"}).WantStatus(202)
	if n := e.mailCount(resetSubject, 1); n != 1 {
		t.Fatalf("%d mails, want 1", n)
	}
	e.Send("POST", "/user/password", apiclient.JSONHeader(""), `{"email":"not an email"}`).WantError(400, "invalid_argument", "email")
	e.Send("POST", "/user/password", apiclient.JSONHeader(""), `{}`).WantError(400, "invalid_argument", "email")

	tok := e.resetToken("alice@example.com")
	e.Send("PUT", "/user/password", apiclient.JSONHeader(""), `{"token":"`+tok+`","password":"password"}`).
		WantError(400, "invalid_argument", "password")
	e.Do("PUT", "/user/password", "", map[string]any{"token": "not-the-token", "password": newPassword}).
		WantError(400, "invalid_argument", "token")
	e.Do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).WantStatus(204)
	// Single use.
	e.Do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).
		WantError(400, "invalid_argument", "token")

	e.Do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": userPassword}).
		WantError(401, "unauthenticated")
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	fresh := e.login("alice@example.com", newPassword)
	e.Do("GET", "/user/"+alice.ID, fresh.Access, nil).WantStatus(200)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.Do("GET", "/.well-known/jwks.json", "", nil).WantStatus(200)
	if got := r.Header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control %q", got)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	r.Decode(&set)
	if len(set.Keys) != 1 || set.Keys[0]["kty"] != "OKP" || set.Keys[0]["alg"] != "EdDSA" || set.Keys[0]["kid"] == "" {
		t.Errorf("JWKS %s", r.Body)
	}
	if _, hasPrivate := set.Keys[0]["d"]; hasPrivate {
		t.Error("JWKS contains a private key")
	}
	// The key in the set is the one access tokens name.
	var header struct {
		Kid string `json:"kid"`
	}
	decodeJWTHeader(t, e.admin.Access, &header)
	if header.Kid != set.Keys[0]["kid"] {
		t.Errorf("token kid %q not in the JWKS", header.Kid)
	}
}

func decodeJWTHeader(t *testing.T, jwt string, v any) {
	t.Helper()
	seg, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("jwt header: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("jwt header: %v", err)
	}
}

// TestServiceAccountGrant: a service account signs in with the client
// credentials grant and its token does exactly what its scopes allow.
func TestServiceAccountGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.register("bob@example.com", "Bob")
	grant := func(scopes ...user.Scope) (string, string) {
		t.Helper()
		a, secret, err := e.svc.CreateServiceAccount(t.Context(), user.SystemActor, "svc", scopes)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken  string `json:"access_token"`
			TokenType    string `json:"token_type"`
			ExpiresIn    int64  `json:"expires_in"`
			RefreshToken string `json:"refresh_token"`
			Scope        string `json:"scope"`
		}
		e.Do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": a.ID,
			"client_secret": secret}).WantStatus(200).Decode(&tok)
		if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.ExpiresIn < 890 || tok.ExpiresIn > 900 {
			t.Errorf("client credentials token %+v", tok)
		}
		return a.ID, tok.AccessToken
	}

	readerID, reader := grant(user.ScopeRead)
	e.Do("GET", "/user/"+bob.ID, reader, nil).WantStatus(200)
	e.Do("GET", "/user", reader, nil).WantStatus(200)
	e.Do("PUT", "/user/"+bob.ID, reader, map[string]any{"name": "Hacked"}).WantError(403, "permission_denied")
	e.Do("DELETE", "/user/"+bob.ID, reader, nil).WantError(403, "permission_denied")

	_, writer := grant(user.ScopeWrite)
	e.Do("PUT", "/user/"+bob.ID, writer, map[string]any{"name": "Robert"}).WantStatus(200)
	e.Do("PUT", "/user/"+bob.ID, writer, map[string]any{"role": "admin"}).WantError(403, "permission_denied")
	e.Do("POST", "/user", writer, map[string]any{"email": "boss@example.com", "password": userPassword, "name": "B", "role": "admin"}).
		WantError(403, "permission_denied")
	// Below users:admin no route reaches an admin: not their credentials
	// (the way to become them), sessions or account. (The whole rule is
	// internal/rpc's TestAuthorizationMatrix; this is the HTTP door.)
	for _, c := range []struct {
		method, path string
		body         map[string]any
	}{
		{"PUT", "/user/" + e.admin.ID, map[string]any{"password": "a whole new passphrase 9"}},
		{"PUT", "/user/" + e.admin.ID, map[string]any{"email": "mine@example.com"}},
		{"PUT", "/user/" + e.admin.ID, map[string]any{"name": "Pwned"}},
		{"GET", "/user/" + e.admin.ID + "/sessions", nil},
		{"DELETE", "/user/" + e.admin.ID + "/sessions", nil},
		{"DELETE", "/user/" + e.admin.ID, nil},
	} {
		e.Do(c.method, c.path, writer, c.body).WantError(403, "permission_denied")
	}
	e.Do("GET", "/user/"+bob.ID+"/sessions", reader, nil).WantError(403, "permission_denied")
	e.Do("GET", "/user/"+bob.ID+"/sessions", writer, nil).WantStatus(200)
	e.login(e.admin.Email, adminPassword)

	_, admin := grant(user.ScopeAdmin)
	e.Do("PUT", "/user/"+bob.ID, admin, map[string]any{"status": "disabled"}).WantStatus(200)

	// A service account is never a user: its id and secret do not log in
	// as a password, and a wrong secret is the same 401 as an unknown id.
	e.Do("POST", "/user/token", "", map[string]any{"email": readerID + "@example.com", "password": "x"}).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": readerID, "client_secret": "wrong"}).
		WantError(401, "unauthenticated")
	e.Send("POST", "/user/token", apiclient.JSONHeader(""), `{"grant_type":"client_credentials","client_id":"`+readerID+
		`","client_secret":"x","password":"y"}`).WantError(400, "invalid_argument", "password")

	if err := e.svc.RevokeServiceAccount(t.Context(), user.SystemActor, readerID); err != nil {
		t.Fatal(err)
	}
	e.Do("GET", "/user/"+bob.ID, reader, nil).WantError(401, "unauthenticated")
}

// TestServiceAccountSignOutRefused: sign-out ends a user's session. A
// service account's token as the bearer is refused with a clear error,
// where a 204 that ended nothing left the token working.
func TestServiceAccountSignOutRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, secret, err := e.svc.CreateServiceAccount(t.Context(), user.SystemActor, "svc", []user.Scope{user.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": a.ID,
		"client_secret": secret}).WantStatus(200).Decode(&tok)
	e.Do("DELETE", "/user/token", tok.AccessToken, map[string]any{"refresh_token": "none"}).
		WantError(400, "invalid_argument", "authorization")
}
