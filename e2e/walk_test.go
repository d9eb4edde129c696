package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/api"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// Passwords that pass the default policy (zxcvbn score >= 2).
const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct horse battery staple"
	userPassword  = "Tr0ub4dor&3xyz"
	newPassword   = "kV9#mQ2!xL-7pw"
)

// target is a running deployment as the walk sees it: a base URL, the
// directory its mailer writes to, and the operator's way to create the
// first admin.
type target struct {
	url     string
	mailDir string
	admin   func(t cluster.TB, email, password string) (id string)
	hc      *http.Client // nil = plain HTTP; set for a TLS entry point (nginx)
}

// jwksJSON is the JWKS schema with the fields of an Ed25519 key.
type jwksJSON struct {
	Keys []struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	} `json:"keys"`
}

// account is a user the walk created, with its current session.
type account struct {
	ID, Email, Password string
	Access, Refresh     string
}

// walkResult is what the walk leaves behind, for checks after it (a
// restart): a user that exists, with the password that is now theirs and
// an access token issued to them.
type walkResult struct {
	User  account
	Name  string
	Admin account
	Users int // how many users exist
}

// walk goes through every route of the API as clients use it — sign-up,
// sign-in, profile, administration, sessions, password reset, deletion —
// against tg, checking statuses, bodies and the contract of every
// response. It is the one scenario both deployments (distributed and dev)
// must pass, so it uses nothing but HTTP and the mail directory.
func walk(t *testing.T, tg target) walkResult {
	c := apiclient.New(t, tg.url)
	if tg.hc != nil {
		c.HTTP = tg.hc
	}

	// The operator bootstraps the first admin from the command line.
	adminID := tg.admin(t, adminEmail, adminPassword)

	// Request IDs: every exchange checks that the client's comes back
	// unchanged; without one (or with one over 128 characters, which
	// could bloat the logs) the deployment makes one up.
	r := c.Exchange(apiclient.Request{Method: "GET", Path: "/.well-known/jwks.json", NoID: true}).WantStatus(200)
	if id := r.Header.Get("X-Request-ID"); id == "" {
		t.Errorf("no X-Request-ID generated for a request without one")
	}
	r = c.Exchange(apiclient.Request{Method: "GET", Path: "/.well-known/jwks.json", NoID: true,
		Header: http.Header{"X-Request-ID": {strings.Repeat("x", 129)}}}).WantStatus(200)
	if id := r.Header.Get("X-Request-ID"); id == "" || len(id) > 128 {
		t.Errorf("an over-long X-Request-ID came back as %q, want a generated one", id)
	}

	// JWKS: the keys that verify access tokens, cacheable.
	var jwks jwksJSON
	r = c.Do("GET", "/.well-known/jwks.json", "", nil).WantStatus(200)
	r.Decode(&jwks)
	if len(jwks.Keys) == 0 {
		t.Fatalf("JWKS without keys: %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control %q", cc)
	}
	// The contract itself is served by the deployment, byte for byte the
	// document this test validates against.
	r = c.Do("GET", "/openapi.yaml", "", nil).WantStatus(200)
	if !bytes.Equal(r.Body, api.OpenAPI) {
		t.Errorf("GET /openapi.yaml served %d bytes that differ from api/openapi.yaml", len(r.Body))
	}
	// An unknown path is the API's 404 envelope, also from the gateway.
	c.Send("GET", "/nope", nil, "").WantError(404, "not_found")

	// Register: 201 with Location and the user.
	r = c.Do("POST", "/user", "", map[string]any{"email": " Alice@Example.com ", "password": userPassword,
		"name": "Alice"}).WantStatus(201)
	var aliceUser apiclient.User
	r.Decode(&aliceUser)
	if aliceUser.Email != "alice@example.com" || aliceUser.Name != "Alice" || aliceUser.Role != "user" ||
		aliceUser.Status != "active" {
		t.Errorf("registered user %+v", aliceUser)
	}
	if loc := r.Header.Get("Location"); loc != "/user/"+aliceUser.ID {
		t.Errorf("Location %q, want /user/%s", loc, aliceUser.ID)
	}
	alice := account{ID: aliceUser.ID, Email: aliceUser.Email, Password: userPassword}

	// What registration refuses.
	c.Do("POST", "/user", "", map[string]any{"email": "ALICE@example.com", "password": userPassword, "name": "Other"}).
		WantError(409, "already_exists")
	c.Send("POST", "/user", apiclient.JSONHeader(""), `{"email":"b@example.com","password":`).
		WantError(400, "invalid_argument")
	c.Send("POST", "/user", apiclient.JSONHeader(""),
		`{"email":"b@example.com","password":"`+userPassword+`","name":"B","nickname":"bee"}`).
		WantError(400, "invalid_argument", "nickname")
	c.Send("POST", "/user", http.Header{"Content-Type": {"text/plain"}},
		`{"email":"b@example.com","password":"`+userPassword+`","name":"B"}`).
		WantError(415, "unsupported_media_type")
	big := []byte(`{"email":"b@example.com","password":"` + userPassword + `","name":"` + strings.Repeat("B", 64<<10) + `"}`)
	c.Send("POST", "/user", apiclient.JSONHeader(""), string(big)).WantError(413, "payload_too_large")
	c.Exchange(apiclient.Request{Method: "POST", Path: "/user", Header: apiclient.JSONHeader(""), Body: big, Chunked: true}).
		WantError(413, "payload_too_large")

	// Sign in: a token pair; the access token is a JWT the JWKS verifies.
	tok := login(c, alice.Email, userPassword)
	alice.Access, alice.Refresh = tok.AccessToken, tok.RefreshToken
	claims := verifyJWT(t, jwks, tok.AccessToken)
	// expires_in is the lifetime left when the response was made, and
	// iat is truncated to the second, so it may be a little short of
	// exp - iat.
	if lifetime := claims.Exp - claims.Iat; claims.Sub != alice.ID || claims.Role != "user" || claims.Iss == "" ||
		claims.Aud == "" || tok.ExpiresIn < lifetime-5 || tok.ExpiresIn > lifetime {
		t.Errorf("access token claims %+v for user %s, expires_in %d", claims, alice.ID, tok.ExpiresIn)
	}
	c.Do("POST", "/user/token", "", map[string]any{"email": alice.Email, "password": "wrong password"}).
		WantError(401, "unauthenticated")
	c.Do("POST", "/user/token", "", map[string]any{"email": "nobody@example.com", "password": userPassword}).
		WantError(401, "unauthenticated")

	bob := register(c, "bob@example.com", "Bob")
	admin := account{ID: adminID, Email: adminEmail, Password: adminPassword}
	tok = login(c, adminEmail, adminPassword)
	admin.Access, admin.Refresh = tok.AccessToken, tok.RefreshToken

	// Reading users: yourself, not others; admins anyone.
	var got apiclient.User
	c.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200).Decode(&got)
	if got != aliceUser {
		t.Errorf("GET own user %+v, registered %+v", got, aliceUser)
	}
	c.Do("GET", "/user/"+bob.ID, alice.Access, nil).WantError(403, "permission_denied")
	c.Do("GET", "/user/"+bob.ID, admin.Access, nil).WantStatus(200)
	c.Do("GET", "/user/"+uuid.NewString(), admin.Access, nil).WantError(404, "not_found")
	c.Send("GET", "/user/"+alice.ID, nil, "").WantError(401, "unauthenticated")

	// Sessions: yours, not others'; admins anyone's.
	var sessions struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	c.Do("GET", "/user/"+alice.ID+"/sessions", alice.Access, nil).WantStatus(200).Decode(&sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].ID == "" {
		t.Errorf("alice's sessions after one sign-in: %+v", sessions)
	}
	c.Do("GET", "/user/"+alice.ID+"/sessions", bob.Access, nil).WantError(403, "permission_denied")
	c.Do("GET", "/user/"+bob.ID+"/sessions", admin.Access, nil).WantStatus(200)

	// Listing: admins only; numbered pages with a total, then the cursor.
	want := []string{adminID, alice.ID, bob.ID}
	var page apiclient.UserList
	c.Do("GET", "/user?page_size=2", admin.Access, nil).WantStatus(200).Decode(&page)
	if page.Total != 3 || page.Page != 1 || page.PageSize != 2 || len(page.Users) != 2 || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	ids := idsOf(page.Users)
	for cursor := page.NextCursor; cursor != ""; cursor = page.NextCursor {
		page = apiclient.UserList{}
		c.Do("GET", "/user?page_size=2&cursor="+url.QueryEscape(cursor), admin.Access, nil).WantStatus(200).Decode(&page)
		if page.Total != -1 || page.Page != 0 || len(page.Users) == 0 {
			t.Fatalf("page by cursor %+v", page)
		}
		ids = append(ids, idsOf(page.Users)...)
		if len(ids) > len(want) {
			t.Fatalf("the cursor walk does not end: %v", ids)
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("cursor walk listed %v, want %v (creation order)", ids, want)
	}
	page = apiclient.UserList{}
	c.Do("GET", "/user?page=2&page_size=2", admin.Access, nil).WantStatus(200).Decode(&page)
	if page.Total != 3 || page.Page != 2 || !slices.Equal(idsOf(page.Users), want[2:]) {
		t.Errorf("page 2 %+v", page)
	}
	c.Do("GET", "/user", alice.Access, nil).WantError(403, "permission_denied")

	// Changing users: your own name yes, your own role no; admins may.
	var changed apiclient.User
	c.Do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"name": "Alice Liddell"}).WantStatus(200).Decode(&changed)
	if changed.Name != "Alice Liddell" || changed.ID != alice.ID || changed.CreatedAt != aliceUser.CreatedAt {
		t.Errorf("after PUT name: %+v", changed)
	}
	c.Do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"role": "admin"}).WantError(403, "permission_denied")
	c.Do("PUT", "/user/"+bob.ID, admin.Access, map[string]any{"role": "admin", "status": "disabled"}).
		WantStatus(200).Decode(&changed)
	if changed.Role != "admin" || changed.Status != "disabled" {
		t.Errorf("after admin PUT role/status: %+v", changed)
	}
	c.Do("POST", "/user/token", "", map[string]any{"email": bob.Email, "password": userPassword}).
		WantError(403, "permission_denied")
	c.Do("PUT", "/user/"+bob.ID, admin.Access, map[string]any{"role": "user", "status": "active"}).
		WantStatus(200).Decode(&changed)
	if changed.Role != "user" || changed.Status != "active" {
		t.Errorf("after admin PUT role/status back: %+v", changed)
	}
	tok = login(c, bob.Email, userPassword)
	bob.Access, bob.Refresh = tok.AccessToken, tok.RefreshToken

	// Refresh rotation: a refresh token is good once. Presented again
	// within the reuse grace of its first use (10s by default: two tabs or
	// parallel calls crossing a rotation) it gets another session of the
	// same family, and both live on. Past the grace a reuse is theft as far
	// as the service can tell and ends the whole family; internal/user and
	// internal/httpapi show that, the walk does not wait for it.
	var rotated, sibling apiclient.Token
	c.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantStatus(200).Decode(&rotated)
	if rotated.RefreshToken == "" || rotated.RefreshToken == alice.Refresh || rotated.AccessToken == "" {
		t.Errorf("rotation returned %+v", rotated)
	}
	c.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantStatus(200).Decode(&sibling)
	if sibling.RefreshToken == "" || sibling.RefreshToken == rotated.RefreshToken || sibling.AccessToken == "" {
		t.Errorf("reuse within the grace returned %+v", sibling)
	}
	for _, tok := range []string{rotated.RefreshToken, sibling.RefreshToken} {
		c.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": tok}).
			WantStatus(200)
	}

	// Sign-out ends the refresh token; issued access tokens live on.
	tok = login(c, alice.Email, userPassword)
	alice.Access, alice.Refresh = tok.AccessToken, tok.RefreshToken
	c.Do("DELETE", "/user/token", "", map[string]any{"refresh_token": alice.Refresh}).WantStatus(204)
	c.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	c.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200)

	// Password reset: 202 whether or not the address is registered; one
	// mail, to the registered one, carrying a link to this deployment.
	before := len(mailsWith(t, tg.mailDir, resetSubject))
	c.Do("POST", "/user/password", "", map[string]any{"email": "nobody@example.com"}).WantStatus(202)
	c.Do("POST", "/user/password", "", map[string]any{"email": alice.Email}).WantStatus(202)
	msg := testenv.WaitMail(t, tg.mailDir, alice.Email, resetSubject, 15*time.Second)
	resetToken := mail.ResetToken(msg.Text)
	if resetToken == "" {
		t.Fatalf("no reset token in the mail:\n%s", msg.Text)
	}
	if !strings.Contains(msg.Text, tg.url+mail.ResetPath+"?token=") {
		t.Errorf("the reset link does not point at %s:\n%s", tg.url, msg.Text)
	}
	// The relay polls every 100ms; a mail for the unregistered address,
	// requested first, would have been written by now.
	time.Sleep(500 * time.Millisecond)
	if msgs := mailsWith(t, tg.mailDir, resetSubject); len(msgs) != before+1 {
		var to []string
		for _, m := range msgs {
			to = append(to, m.Header.Get("To"))
		}
		t.Errorf("%d mails after two reset requests (one unregistered), want %d: to %v", len(msgs)-before, 1, to)
	}

	c.Do("PUT", "/user/password", "", map[string]any{"token": resetToken, "password": newPassword}).WantStatus(204)
	c.Do("POST", "/user/token", "", map[string]any{"email": alice.Email, "password": userPassword}).
		WantError(401, "unauthenticated")
	c.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantError(401, "unauthenticated")
	c.Do("PUT", "/user/password", "", map[string]any{"token": resetToken, "password": "an0ther-Secret!pass"}).
		WantError(400, "invalid_argument", "token")
	tok = login(c, alice.Email, newPassword)
	alice.Password, alice.Access, alice.Refresh = newPassword, tok.AccessToken, tok.RefreshToken

	// Deleting: the user's tokens stop working at once.
	c.Do("DELETE", "/user/"+bob.ID, bob.Access, nil).WantStatus(204)
	c.Do("GET", "/user/"+bob.ID, bob.Access, nil).WantError(401, "unauthenticated")
	c.Do("GET", "/user/"+bob.ID, admin.Access, nil).WantError(404, "not_found")
	c.Do("POST", "/user/token", "", map[string]any{"email": bob.Email, "password": userPassword}).
		WantError(401, "unauthenticated")

	return walkResult{User: alice, Name: "Alice Liddell", Admin: admin, Users: 2}
}

// register creates a user with userPassword and signs them in.
func register(c *apiclient.Client, email, name string) account {
	c.T().Helper()
	var u apiclient.User
	c.Do("POST", "/user", "", map[string]any{"email": email, "password": userPassword, "name": name}).
		WantStatus(201).Decode(&u)
	tok := login(c, email, userPassword)
	return account{ID: u.ID, Email: email, Password: userPassword, Access: tok.AccessToken, Refresh: tok.RefreshToken}
}

// login signs in and checks the shape of the answer.
func login(c *apiclient.Client, email, password string) apiclient.Token {
	c.T().Helper()
	r := c.Do("POST", "/user/token", "", map[string]any{"email": email, "password": password}).WantStatus(200)
	var tok apiclient.Token
	r.Decode(&tok)
	if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.RefreshToken == "" || strings.Count(tok.AccessToken, ".") != 2 {
		c.T().Errorf("token response %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		c.T().Errorf("token response Cache-Control %q, want no-store", cc)
	}
	return tok
}

func idsOf(users []apiclient.User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

// jwtClaims are the claims the walk checks.
type jwtClaims struct {
	Iss  string `json:"iss"`
	Sub  string `json:"sub"`
	Aud  string `json:"aud"`
	Role string `json:"role"`
	Exp  int64  `json:"exp"`
	Iat  int64  `json:"iat"`
	// EmailVerified is OpenID Connect's claim; every user token has it.
	EmailVerified *bool `json:"email_verified"`
}

// verifyJWT checks an access token the way a third party would, with
// nothing but the published JWKS: an EdDSA signature by the key its kid
// names.
func verifyJWT(t *testing.T, jwks jwksJSON, tok string) jwtClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWS compact serialisation", tok)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("access token part %q: %v", s, err)
		}
		return b
	}
	var hdr struct{ Alg, Kid string }
	if err := json.Unmarshal(dec(parts[0]), &hdr); err != nil {
		t.Fatalf("access token header: %v", err)
	}
	if hdr.Alg != "EdDSA" {
		t.Fatalf("access token alg %q, want EdDSA", hdr.Alg)
	}
	var pub ed25519.PublicKey
	for _, k := range jwks.Keys {
		if k.Kid == hdr.Kid && k.Kty == "OKP" && k.Crv == "Ed25519" {
			pub = dec(k.X)
		}
	}
	if len(pub) != ed25519.PublicKeySize {
		t.Fatalf("no Ed25519 key %q in the JWKS %+v", hdr.Kid, jwks)
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), dec(parts[2])) {
		t.Fatalf("the access token's signature does not verify with JWKS key %q", hdr.Kid)
	}
	var c jwtClaims
	if err := json.Unmarshal(dec(parts[1]), &c); err != nil {
		t.Fatalf("access token claims: %v", err)
	}
	return c
}

// readMail returns the mails in dir (none if it does not exist yet).
func readMail(t *testing.T, dir string) []mail.Stored {
	t.Helper()
	msgs, err := mail.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read mail: %v", err)
	}
	return msgs
}

// Subjects of the mails the tests wait for: every sign-up is mailed a
// verification too, so a test names the mail it means.
const (
	resetSubject  = "Reset your password"
	verifySubject = "Confirm your email address"
)

// mailsWith returns the mails in dir with subject.
func mailsWith(t *testing.T, dir, subject string) []mail.Stored {
	t.Helper()
	var out []mail.Stored
	for _, m := range readMail(t, dir) {
		if m.Subject() == subject {
			out = append(out, m)
		}
	}
	return out
}
