package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
)

// jwtClaims decodes an access token's claims into v (the signature is the
// service's business; Validate checks it on every call).
func jwtClaims(t *testing.T, access string, v any) {
	t.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		t.Fatalf("claims %s: %v", payload, err)
	}
}

type sessionList struct {
	Sessions []struct {
		ID         string    `json:"id"`
		StartedAt  time.Time `json:"started_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
	} `json:"sessions"`
}

// GET /user/{id}/sessions lists a user's sign-ins, newest first, each
// named by the sid of its access tokens; the user and admins may see them,
// nobody else.
func TestListSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	second := e.login("alice@example.com", userPassword)
	bob := e.register("bob@example.com", "Bob")

	var list sessionList
	e.Do("GET", "/user/"+alice.ID+"/sessions", alice.Access, nil).WantStatus(200).Decode(&list)
	if len(list.Sessions) != 2 {
		t.Fatalf("%d sessions listed, want 2: %+v", len(list.Sessions), list)
	}
	for i, tok := range []string{second.Access, alice.Access} { // newest first
		var c struct {
			SID string `json:"sid"`
		}
		jwtClaims(t, tok, &c)
		s := list.Sessions[i]
		if s.ID != c.SID {
			t.Errorf("session %d is %s, want the sid %s of the sign-in", i, s.ID, c.SID)
		}
		if s.StartedAt.After(s.LastUsedAt) || !s.ExpiresAt.After(s.LastUsedAt) {
			t.Errorf("session %d: started %v, last used %v, expires %v", i, s.StartedAt, s.LastUsedAt, s.ExpiresAt)
		}
	}
	e.Do("GET", "/user/"+alice.ID+"/sessions", e.admin.Access, nil).WantStatus(200)
	e.Do("GET", "/user/"+alice.ID+"/sessions", bob.Access, nil).WantError(403, "permission_denied")
	e.Send("GET", "/user/"+alice.ID+"/sessions", nil, "").WantError(401, "unauthenticated")
	e.Send("GET", "/user/not-a-uuid/sessions", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "id")
	e.Do("GET", "/user/0190b4a2-0000-7000-8000-000000000000/sessions", e.admin.Access, nil).WantError(404, "not_found")
}

// DELETE /user/{id}/sessions signs the user out everywhere: their access
// and refresh tokens stop working at once, and a new sign-in works.
func TestEndSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	other := e.login("alice@example.com", userPassword)
	bob := e.register("bob@example.com", "Bob")

	e.Do("DELETE", "/user/"+alice.ID+"/sessions", bob.Access, nil).WantError(403, "permission_denied")
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200)

	e.Do("DELETE", "/user/"+alice.ID+"/sessions", alice.Access, nil).WantStatus(204)
	for _, s := range []string{alice.Access, other.Access} {
		e.Do("GET", "/user/"+alice.ID, s, nil).WantStatus(401)
	}
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": other.Refresh}).
		WantStatus(401)
	again := e.login("alice@example.com", userPassword)
	var list sessionList
	e.Do("GET", "/user/"+alice.ID+"/sessions", again.Access, nil).WantStatus(200).Decode(&list)
	if len(list.Sessions) != 1 {
		t.Errorf("%d sessions after signing out everywhere and in again, want 1", len(list.Sessions))
	}
	// An admin may end anyone's sessions; bob is unaffected by alice's.
	e.Do("DELETE", "/user/"+alice.ID+"/sessions", e.admin.Access, nil).WantStatus(204)
	e.Do("GET", "/user/"+alice.ID, again.Access, nil).WantStatus(401)
	e.Do("GET", "/user/"+bob.ID, bob.Access, nil).WantStatus(200)
}
