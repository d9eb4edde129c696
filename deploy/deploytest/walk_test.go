package deploytest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
)

// walker is the README's curl walk against one base URL: the account it
// registered and the access token it got, and the project's one test
// client of the API, which checks every exchange against api/openapi.yaml.
type walker struct {
	id, access string
	api        *apiclient.Client
}

// walk runs the README's walk through base (here the gateway's Service
// address): register, sign in, read the user back with the token, the
// public keys and readiness. It returns the signed-in walker for load.
func walk(t *testing.T, base string) *walker {
	t.Helper()
	w := &walker{api: apiclient.New(t, base)}
	w.api.HTTP = &http.Client{Timeout: 10 * time.Second}
	email := "alice-" + randomHex(t, 4) + "@example.com"
	const password = "correct horse battery staple"
	var user struct{ ID, Email string }
	w.api.Do("POST", "/user", "", map[string]string{"email": email, "password": password, "name": "Alice"}).
		WantStatus(http.StatusCreated).Decode(&user)
	if user.ID == "" {
		t.Fatalf("POST /user answered no id")
	}
	w.id = user.ID
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	w.api.Do("POST", "/user/token", "", map[string]string{"email": email, "password": password}).
		WantStatus(http.StatusOK).Decode(&tok)
	w.access = tok.AccessToken
	var got struct{ ID, Email string }
	w.api.Do("GET", "/user/"+w.id, w.access, nil).WantStatus(http.StatusOK).Decode(&got)
	if got.ID != w.id || got.Email != email {
		t.Errorf("GET /user/%s = %+v, want the user registered (%s)", w.id, got, email)
	}
	w.api.Do("GET", "/.well-known/jwks.json", "", nil).WantStatus(http.StatusOK)
	w.api.Do("GET", "/readyz", "", nil).WantStatus(http.StatusOK)
	t.Logf("README walk through %s: registered %s, signed in, read back", base, w.id)
	return w
}

// try sends one request with the walker's token from a load goroutine,
// where a failure is counted rather than ending the test: it returns the
// response, or an error for a transport failure or a broken contract.
func (w *walker) try(ctx context.Context, method, path string, body any) (*apiclient.Response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	hdr := apiclient.Bearer(w.access)
	if body != nil {
		hdr = apiclient.JSONHeader(w.access)
	}
	r, err := w.api.Try(ctx, apiclient.Request{Method: method, Path: path, Header: hdr, Body: raw, Valid: true})
	if err != nil {
		return nil, err
	}
	return r.Response, r.CheckErr
}
