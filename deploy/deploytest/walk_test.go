package deploytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// walker is the README's curl walk against one base URL: the account it
// registered and the access token it got.
type walker struct {
	base, id, access string
	hc               *http.Client
}

// walk runs the README's walk through base (here the gateway's Service
// address): register, sign in, read the user back with the token, the
// public keys and readiness. It returns the signed-in walker for load.
func walk(t *testing.T, base string) *walker {
	t.Helper()
	w := &walker{base: base, hc: &http.Client{Timeout: 10 * time.Second}}
	email := "alice-" + randomHex(t, 4) + "@example.com"
	const password = "correct horse battery staple"
	var user struct{ ID, Email string }
	w.call(t, "POST", "/user", map[string]string{"email": email, "password": password, "name": "Alice"}, http.StatusCreated, &user)
	if user.ID == "" {
		t.Fatalf("POST /user answered no id")
	}
	w.id = user.ID
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	w.call(t, "POST", "/user/token", map[string]string{"email": email, "password": password}, http.StatusOK, &tok)
	w.access = tok.AccessToken
	var got struct{ ID, Email string }
	w.call(t, "GET", "/user/"+w.id, nil, http.StatusOK, &got)
	if got.ID != w.id || got.Email != email {
		t.Errorf("GET /user/%s = %+v, want the user registered (%s)", w.id, got, email)
	}
	w.call(t, "GET", "/.well-known/jwks.json", nil, http.StatusOK, nil)
	w.call(t, "GET", "/readyz", nil, http.StatusOK, nil)
	t.Logf("README walk through %s: registered %s, signed in, read back", base, w.id)
	return w
}

// call sends one request (JSON body, the walker's token when it has one)
// and fails the test unless the status is want; out, when not nil,
// receives the JSON answer.
func (w *walker) call(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	status, b, err := w.do(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (w *walker) do(method, path string, body any) (int, []byte, error) {
	return send(w.hc, method, w.base+path, w.access, body)
}

// send makes one request with body as JSON (none when nil) and the bearer
// token when there is one, and returns the status and the answer's body:
// the one HTTP client of this package's walks, the README's through the
// compose stack and through the cluster.
func send(hc *http.Client, method, url, bearer string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}
