package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func TestIssueToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")

	for _, body := range []map[string]any{
		{"email": "alice@example.com", "password": userPassword},
		{"grant_type": "password", "email": "ALICE@example.com", "password": userPassword},
	} {
		r := e.do("POST", "/user/token", "", body).wantStatus(200)
		var tok tokenJSON
		r.decode(&tok)
		if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn < 890 || tok.ExpiresIn > 900 {
			t.Errorf("token response %+v", tok)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		e.do("GET", "/user/"+alice.ID, tok.AccessToken, nil).wantStatus(200)
	}

	// Wrong password and unknown email are indistinguishable.
	wrong := e.do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": "not the password"}).
		wantError(401, "unauthenticated")
	unknown := e.do("POST", "/user/token", "", map[string]any{"email": "nobody@example.com", "password": "not the password"}).
		wantError(401, "unauthenticated")
	if wrong.Error.Message != unknown.Error.Message {
		t.Errorf("messages differ: %q vs %q", wrong.Error.Message, unknown.Error.Message)
	}

	e.send("POST", "/user/token", jsonHeader(""), `{}`).wantError(400, "invalid_argument", "email", "password")
	e.send("POST", "/user/token", jsonHeader(""), `{"grant_type":"client_credentials"}`).
		wantError(400, "invalid_argument", "client_id", "client_secret")
	e.send("POST", "/user/token", jsonHeader(""), `{"grant_type":"authorization_code"}`).
		wantError(400, "invalid_argument", "grant_type")
	e.send("POST", "/user/token", jsonHeader(""), `{"grant_type":"refresh_token"}`).
		wantError(400, "invalid_argument", "refresh_token")
	e.send("POST", "/user/token", jsonHeader(""), `{"grant_type":"refresh_token","refresh_token":"x","email":"a@b.c","password":"p"}`).
		wantError(400, "invalid_argument", "email", "password")
	e.send("POST", "/user/token", jsonHeader(""), `{"email":"a@b.c","password":"p","refresh_token":"x"}`).
		wantError(400, "invalid_argument", "refresh_token")
}

// TestRefreshRotation: each refresh token works once; presenting a used one
// again is theft by assumption and kills the whole family, including the
// newest token the legitimate client holds.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	refresh := func(rt string) *response {
		return e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": rt})
	}

	var second, third tokenJSON
	refresh(alice.Refresh).wantStatus(200).decode(&second)
	if second.RefreshToken == alice.Refresh || second.AccessToken == "" {
		t.Fatalf("not rotated: %+v", second)
	}
	e.do("GET", "/user/"+alice.ID, second.AccessToken, nil).wantStatus(200)
	refresh(second.RefreshToken).wantStatus(200).decode(&third)

	// Reuse of the first token: refused, and the family's newest dies too.
	refresh(alice.Refresh).wantError(401, "unauthenticated")
	refresh(third.RefreshToken).wantError(401, "unauthenticated")
	refresh("never-issued").wantError(401, "unauthenticated")

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

	e.do("DELETE", "/user/token", "", map[string]any{"refresh_token": alice.Refresh}).wantStatus(204)
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		wantError(401, "unauthenticated")
	// Logout ends one session (family), not the user's other sign-ins.
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": other.Refresh}).
		wantStatus(200)

	e.do("DELETE", "/user/token", "", map[string]any{"refresh_token": alice.Refresh}).wantStatus(204)
	e.do("DELETE", "/user/token", "", map[string]any{"refresh_token": "never-issued"}).wantStatus(204)
	e.send("DELETE", "/user/token", jsonHeader(""), `{}`).wantError(400, "invalid_argument", "refresh_token")
}

// TestPasswordReset walks the whole flow: request, mail, reset, and the end
// of every earlier session.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")

	// Unknown and registered emails get the same answer; only one mail goes out.
	e.do("POST", "/user/password", "", map[string]any{"email": "nobody@example.com"}).wantStatus(202)
	if n := e.mailCount(resetSubject, 0); n != 0 {
		t.Errorf("%d mails for an unknown address", n)
	}
	e.do("POST", "/user/password", "", map[string]any{"email": "Alice@Example.com"}).wantStatus(202)
	if n := e.mailCount(resetSubject, 1); n != 1 {
		t.Fatalf("%d mails, want 1", n)
	}
	e.send("POST", "/user/password", jsonHeader(""), `{"email":"not an email"}`).wantError(400, "invalid_argument", "email")
	e.send("POST", "/user/password", jsonHeader(""), `{}`).wantError(400, "invalid_argument", "email")

	tok := e.resetToken("alice@example.com")
	e.send("PUT", "/user/password", jsonHeader(""), `{"token":"`+tok+`","password":"password"}`).
		wantError(400, "invalid_argument", "password")
	e.do("PUT", "/user/password", "", map[string]any{"token": "not-the-token", "password": newPassword}).
		wantError(400, "invalid_argument", "token")
	e.do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).wantStatus(204)
	// Single use.
	e.do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).
		wantError(400, "invalid_argument", "token")

	e.do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": userPassword}).
		wantError(401, "unauthenticated")
	e.do("GET", "/user/"+alice.ID, alice.Access, nil).wantError(401, "unauthenticated")
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		wantError(401, "unauthenticated")
	fresh := e.login("alice@example.com", newPassword)
	e.do("GET", "/user/"+alice.ID, fresh.Access, nil).wantStatus(200)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/.well-known/jwks.json", "", nil).wantStatus(200)
	if got := r.Header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control %q", got)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	r.decode(&set)
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
		e.do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": a.ID,
			"client_secret": secret}).wantStatus(200).decode(&tok)
		if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.ExpiresIn < 890 || tok.ExpiresIn > 900 {
			t.Errorf("client credentials token %+v", tok)
		}
		return a.ID, tok.AccessToken
	}

	readerID, reader := grant(user.ScopeRead)
	e.do("GET", "/user/"+bob.ID, reader, nil).wantStatus(200)
	e.do("GET", "/user", reader, nil).wantStatus(200)
	e.do("PUT", "/user/"+bob.ID, reader, map[string]any{"name": "Hacked"}).wantError(403, "permission_denied")
	e.do("DELETE", "/user/"+bob.ID, reader, nil).wantError(403, "permission_denied")

	_, writer := grant(user.ScopeWrite)
	e.do("PUT", "/user/"+bob.ID, writer, map[string]any{"name": "Robert"}).wantStatus(200)
	e.do("PUT", "/user/"+bob.ID, writer, map[string]any{"role": "admin"}).wantError(403, "permission_denied")
	e.do("POST", "/user", writer, map[string]any{"email": "boss@example.com", "password": userPassword, "name": "B", "role": "admin"}).
		wantError(403, "permission_denied")

	_, admin := grant(user.ScopeAdmin)
	e.do("PUT", "/user/"+bob.ID, admin, map[string]any{"status": "disabled"}).wantStatus(200)

	// A service account is never a user: its id and secret do not log in
	// as a password, and a wrong secret is the same 401 as an unknown id.
	e.do("POST", "/user/token", "", map[string]any{"email": readerID + "@example.com", "password": "x"}).wantError(401, "unauthenticated")
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": readerID, "client_secret": "wrong"}).
		wantError(401, "unauthenticated")
	e.send("POST", "/user/token", jsonHeader(""), `{"grant_type":"client_credentials","client_id":"`+readerID+
		`","client_secret":"x","password":"y"}`).wantError(400, "invalid_argument", "password")

	if err := e.svc.RevokeServiceAccount(t.Context(), user.SystemActor, readerID); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/user/"+bob.ID, reader, nil).wantError(401, "unauthenticated")
}
