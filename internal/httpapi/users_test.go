package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.Do("POST", "/user", "", map[string]any{"email": " Alice@Example.com ", "password": userPassword, "name": " Alice "})
	r.WantStatus(201)
	var u apiclient.User
	r.Decode(&u)
	if u.Email != "alice@example.com" || u.Name != "Alice" || u.Role != "user" || u.Status != "active" {
		t.Errorf("created %+v", u)
	}
	if got := r.Header.Get("Location"); got != "/user/"+u.ID {
		t.Errorf("Location %q", got)
	}
	for _, ts := range []string{u.CreatedAt, u.UpdatedAt} {
		p, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !strings.HasSuffix(ts, "Z") || time.Since(p) > time.Minute {
			t.Errorf("timestamp %q is not a recent RFC 3339 UTC time (%v)", ts, err)
		}
	}
	if strings.Contains(string(r.Body), "argon2") || strings.Contains(string(r.Body), "password") {
		t.Errorf("response leaks the password: %s", r.Body)
	}

	t.Run("duplicate email", func(t *testing.T) {
		e := e.with(t)
		e.Do("POST", "/user", "", map[string]any{"email": "ALICE@example.com", "password": userPassword, "name": "Other"}).
			WantError(409, "already_exists")
	})
	t.Run("validation names every bad field", func(t *testing.T) {
		e := e.with(t)
		e.Send("POST", "/user", apiclient.JSONHeader(""), `{"email":"not-an-email","password":"password","name":""}`).
			WantError(400, "invalid_argument", "email", "password", "name")
		e.Send("POST", "/user", apiclient.JSONHeader(""), `{}`).WantError(400, "invalid_argument", "email", "password", "name")
		e.Send("POST", "/user", apiclient.JSONHeader(""), `{"email":"b@example.com","password":"`+userPassword+`","name":"B","role":"root"}`).
			WantError(400, "invalid_argument", "role")
	})
	t.Run("only an admin creates an admin", func(t *testing.T) {
		e := e.with(t)
		body := map[string]any{"email": "boss@example.com", "password": userPassword, "name": "Boss", "role": "admin"}
		e.Do("POST", "/user", "", body).WantError(403, "permission_denied")
		e.Do("POST", "/user", e.login("alice@example.com", userPassword).Access, body).WantError(403, "permission_denied")
		r := e.Do("POST", "/user", e.admin.Access, body)
		r.WantStatus(201)
		var u apiclient.User
		r.Decode(&u)
		if u.Role != "admin" {
			t.Errorf("role %q", u.Role)
		}
	})
	t.Run("a token that is sent must be valid", func(t *testing.T) {
		e := e.with(t)
		e.Send("POST", "/user", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer nope"}},
			`{"email":"c@example.com","password":"`+userPassword+`","name":"C"}`).WantError(401, "unauthenticated")
	})
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")

	var u apiclient.User
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200).Decode(&u)
	if u.ID != alice.ID || u.Email != "alice@example.com" {
		t.Errorf("got %+v", u)
	}
	e.Do("GET", "/user/"+bob.ID, e.admin.Access, nil).WantStatus(200)
	e.Do("GET", "/user/"+bob.ID, alice.Access, nil).WantError(403, "permission_denied")
	e.Do("GET", "/user/0190b7a8-0000-7000-8000-000000000000", e.admin.Access, nil).WantError(404, "not_found")
	e.Send("GET", "/user/not-a-uuid", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "id")
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	path := "/user/" + alice.ID

	e.Send("GET", path, nil, "").WantError(401, "unauthenticated")
	e.Send("GET", path, http.Header{"Authorization": {"Basic YTpi"}}, "").WantError(401, "unauthenticated")
	e.Send("GET", path, http.Header{"Authorization": {"Bearer"}}, "").WantError(401, "unauthenticated")
	e.Send("GET", path, apiclient.Bearer("garbage"), "").WantError(401, "unauthenticated")
	// A token with a flipped signature byte.
	tampered := alice.Access[:len(alice.Access)-2] + flip(alice.Access[len(alice.Access)-2])
	e.Send("GET", path, apiclient.Bearer(tampered), "").WantError(401, "unauthenticated")
	// A genuinely signed but expired token.
	e.Send("GET", path, apiclient.Bearer(e.expiredToken(alice.ID)), "").WantError(401, "unauthenticated")
	// The scheme name is case-insensitive (RFC 9110).
	e.Send("GET", path, http.Header{"Authorization": {"bearer " + alice.Access}}, "").WantStatus(200)
	// Every protected route refuses an anonymous caller.
	for _, m := range []string{"GET", "DELETE"} {
		e.Send(m, path, nil, "").WantError(401, "unauthenticated")
	}
	e.Send("PUT", path, apiclient.JSONHeader(""), `{"name":"x"}`).WantError(401, "unauthenticated")
	e.Send("GET", "/user", nil, "").WantError(401, "unauthenticated")
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	e.register("bob@example.com", "Bob")
	e.register("carol@example.com", "Carol")

	e.Do("GET", "/user", alice.Access, nil).WantError(403, "permission_denied")

	var page struct {
		Users      []apiclient.User `json:"users"`
		Total      int64            `json:"total"`
		Page       int              `json:"page"`
		PageSize   int              `json:"page_size"`
		NextCursor string           `json:"next_cursor"`
	}
	e.Do("GET", "/user?page=1&page_size=2", e.admin.Access, nil).WantStatus(200).Decode(&page)
	if page.Total != 4 || len(page.Users) != 2 || page.Page != 1 || page.PageSize != 2 || page.NextCursor == "" {
		t.Errorf("page 1: %+v", page)
	}
	e.Do("GET", "/user?page=2&page_size=2", e.admin.Access, nil).WantStatus(200).Decode(&page)
	if len(page.Users) != 2 || page.Users[1].Email != "carol@example.com" || page.NextCursor != "" {
		t.Errorf("page 2: %+v", page)
	}
	e.Do("GET", "/user?q=BO&role=user&status=active", e.admin.Access, nil).WantStatus(200).Decode(&page)
	if page.Total != 1 || len(page.Users) != 1 || page.Users[0].Email != "bob@example.com" {
		t.Errorf("filtered: %+v", page)
	}
	e.Do("GET", "/user?role=admin", e.admin.Access, nil).WantStatus(200).Decode(&page)
	if len(page.Users) != 1 || page.Users[0].ID != e.admin.ID {
		t.Errorf("admins: %+v", page)
	}
	r := e.Do("GET", "/user?q=nobody", e.admin.Access, nil).WantStatus(200)
	if !strings.Contains(string(r.Body), `"users":[]`) || !strings.Contains(string(r.Body), `"next_cursor":""`) {
		t.Errorf("empty page must have users [] and next_cursor \"\": %s", r.Body)
	}
}

// TestListUsersCursorWalk pages through every user by cursor and sees each
// exactly once, in creation order.
func TestListUsersCursorWalk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := []string{"admin@example.com"}
	for _, n := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
		e.Do("POST", "/user", "", map[string]any{"email": n + "@example.com", "password": userPassword, "name": n}).WantStatus(201)
		want = append(want, n+"@example.com")
	}
	var got []string
	cursor, pages := "", 0
	for {
		q := url.Values{"page_size": {"3"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Users      []apiclient.User `json:"users"`
			Total      int64            `json:"total"`
			Page       int              `json:"page"`
			NextCursor string           `json:"next_cursor"`
		}
		e.Do("GET", "/user?"+q.Encode(), e.admin.Access, nil).WantStatus(200).Decode(&page)
		pages++
		switch {
		case cursor == "" && (page.Total != int64(len(want)) || page.Page != 1):
			t.Errorf("first page: total %d, page %d; want %d, 1", page.Total, page.Page, len(want))
		case cursor != "" && (page.Total != -1 || page.Page != 0):
			t.Errorf("cursor page: total %d, page %d; want -1, 0", page.Total, page.Page)
		}
		for _, u := range page.Users {
			got = append(got, u.Email)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 10 {
			t.Fatal("cursor walk does not end")
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("walked %d pages: %v, want %v", pages, got, want)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")
	path := "/user/" + alice.ID

	var u apiclient.User
	e.Do("PUT", path, alice.Access, map[string]any{"name": "Alice A."}).WantStatus(200).Decode(&u)
	if u.Name != "Alice A." || u.Email != "alice@example.com" {
		t.Errorf("after name change: %+v", u)
	}
	created, _ := time.Parse(time.RFC3339Nano, u.CreatedAt)
	updated, _ := time.Parse(time.RFC3339Nano, u.UpdatedAt)
	if !updated.After(created) {
		t.Errorf("updated_at %s not after created_at %s", u.UpdatedAt, u.CreatedAt)
	}

	// Users change email or password only with their current password.
	e.Do("PUT", path, alice.Access, map[string]any{"email": "alice2@example.com"}).
		WantError(400, "invalid_argument", "current_password")
	e.Do("PUT", path, alice.Access, map[string]any{"email": "alice2@example.com", "current_password": "wrong password"}).
		WantError(400, "invalid_argument", "current_password")
	e.Do("PUT", path, alice.Access, map[string]any{"email": "bob@example.com", "current_password": userPassword}).
		WantError(409, "already_exists")
	e.Do("PUT", path, alice.Access, map[string]any{"email": "alice2@example.com", "current_password": userPassword}).
		WantStatus(200).Decode(&u)
	// The new address is the login once its mailed link is used.
	if u.Email != "alice@example.com" || u.PendingEmail != "alice2@example.com" {
		t.Errorf("email %q, pending %q", u.Email, u.PendingEmail)
	}
	e.Do("PUT", "/user/verification", "", map[string]any{"token": e.verifyToken("alice2@example.com")}).WantStatus(204)
	e.Do("GET", path, alice.Access, nil).WantStatus(200).Decode(&u)
	if u.Email != "alice2@example.com" || u.PendingEmail != "" || !u.EmailVerified {
		t.Errorf("after verification: %+v", u)
	}
	e.Send("PUT", path, apiclient.JSONHeader(e.admin.Access), `{"name":"`+strings.Repeat("n", 101)+`","email":"x"}`).
		WantError(400, "invalid_argument", "name", "email")
	e.Send("PUT", path, apiclient.JSONHeader(alice.Access), `{"password":"short","current_password":"`+userPassword+`"}`).
		WantError(400, "invalid_argument", "password")
	e.Send("PUT", path, apiclient.JSONHeader(e.admin.Access), `{"role":"root","status":"gone"}`).
		WantError(400, "invalid_argument", "role", "status")

	// Permissions.
	e.Do("PUT", path, alice.Access, map[string]any{"role": "admin"}).WantError(403, "permission_denied")
	e.Do("PUT", path, alice.Access, map[string]any{"status": "disabled"}).WantError(403, "permission_denied")
	e.Do("PUT", "/user/"+bob.ID, alice.Access, map[string]any{"name": "Mallory"}).WantError(403, "permission_denied")
	e.Do("PUT", "/user/"+e.admin.ID, e.admin.Access, map[string]any{"role": "user"}).WantError(403, "permission_denied")
	e.Do("PUT", "/user/0190b7a8-0000-7000-8000-000000000000", e.admin.Access, map[string]any{"name": "X"}).
		WantError(404, "not_found")

	// Admins change anyone's role and status; the change applies at once,
	// because the API acts on the user Validate returns, not the token.
	e.Do("PUT", "/user/"+bob.ID, e.admin.Access, map[string]any{"role": "admin"}).WantStatus(200).Decode(&u)
	if u.Role != "admin" {
		t.Errorf("role %q", u.Role)
	}
	e.Do("GET", "/user", bob.Access, nil).WantStatus(200)
	e.Do("PUT", "/user/"+bob.ID, e.admin.Access, map[string]any{"status": "disabled"}).WantStatus(200)
	e.Do("GET", "/user/"+bob.ID, bob.Access, nil).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"email": bob.Email, "password": userPassword}).
		WantError(403, "permission_denied")

	// A password change ends every session.
	alice2 := e.login("alice2@example.com", userPassword)
	e.Do("PUT", path, alice2.Access, map[string]any{"password": newPassword, "current_password": userPassword}).WantStatus(200)
	e.Do("GET", path, alice2.Access, nil).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice2.Refresh}).
		WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"email": "alice2@example.com", "password": userPassword}).
		WantError(401, "unauthenticated")
	e.login("alice2@example.com", newPassword)
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	bob := e.register("bob@example.com", "Bob")

	e.Do("DELETE", "/user/"+bob.ID, alice.Access, nil).WantError(403, "permission_denied")
	e.Do("DELETE", "/user/"+alice.ID, alice.Access, nil).WantStatus(204)
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	e.Do("GET", "/user/"+alice.ID, e.admin.Access, nil).WantError(404, "not_found")

	e.Do("DELETE", "/user/"+bob.ID, e.admin.Access, nil).WantStatus(204)
	e.Do("DELETE", "/user/"+bob.ID, e.admin.Access, nil).WantError(404, "not_found")
	e.Send("DELETE", "/user/nope", apiclient.Bearer(e.admin.Access), "").WantError(400, "invalid_argument", "id")
}

// flip changes one base64url character into another.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestPersonalDataNotStored: every answer about a user carries
// Cache-Control: no-store, so no shared or browser cache keeps it.
func TestPersonalDataNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	for _, r := range []*apiclient.Response{
		e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200),
		e.Do("GET", "/user", e.admin.Access, nil).WantStatus(200),
		e.Do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"name": "Alice B"}).WantStatus(200),
		e.Do("GET", "/user/"+alice.ID+"/sessions", alice.Access, nil).WantStatus(200),
		e.Do("POST", "/user", e.admin.Access, map[string]any{"email": "bob@example.com", "password": userPassword, "name": "Bob"}).WantStatus(201),
		e.Do("GET", "/user/"+alice.ID, e.admin.Access, nil).WantStatus(200),
	} {
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", r.Method, r.Path, got)
		}
	}
}

// TestSignupWithDatabaseCutIs503MySQL: a sign-up that cannot be served
// because the service's database is unreachable answers 503 with
// Retry-After, not 500, and the service's log names the database.
func TestSignupWithDatabaseCutIs503MySQL(t *testing.T) {
	dsn, p := testenv.MySQLBehindProxy(t)
	e := newEnvOn(t, stack.Options{MySQLDSN: dsn})
	p.Down()
	r := e.Do("POST", "/user", "", map[string]any{"email": "cut@example.com", "password": userPassword, "name": "Cut"})
	r.WantError(503, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if e.logs.Count("the database is unavailable") == 0 {
		t.Errorf("the log does not name the database:\n%s", e.logs.String())
	}
	p.Up()
	e.Do("POST", "/user", "", map[string]any{"email": "cut@example.com", "password": userPassword, "name": "Cut"}).WantStatus(201)
}
