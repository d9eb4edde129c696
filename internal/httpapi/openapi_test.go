package httpapi_test

import (
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/apispec"
)

// Every HTTP exchange of every test goes through the env's
// apiclient.Client, which checks the response (and, for requests the test
// means to be valid, the request) against the document tested here. No
// test talks to the server any other way, so none can forget the check.

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc, _, err := apispec.Load()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	// Every route of the API is described.
	want := map[string][]string{
		"/user":                                       {"GET", "POST"},
		"/user/{id}":                                  {"DELETE", "GET", "PUT"},
		"/user/{id}/sessions":                         {"DELETE", "GET"},
		"/user/{id}/factors":                          {"DELETE", "GET"},
		"/user/{id}/factors/{factor_id}":              {"DELETE"},
		"/user/{id}/factors/totp":                     {"POST"},
		"/user/{id}/factors/webauthn":                 {"POST"},
		"/user/{id}/factors/{factor_id}/confirmation": {"POST"},
		"/user/{id}/recovery-codes":                   {"POST"},
		"/user/token":                                 {"DELETE", "POST"},
		"/user/token/webauthn":                        {"POST"},
		"/user/password":                              {"POST", "PUT"},
		"/user/verification":                          {"POST", "PUT"},
		"/.well-known/jwks.json":                      {"GET"},
		"/openapi.yaml":                               {"GET"},
		"/healthz":                                    {"GET"},
		"/readyz":                                     {"GET"},
	}
	if got := doc.Paths.Len(); got != len(want) {
		t.Errorf("document has %d paths, want %d", got, len(want))
	}
	for path, methods := range want {
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("path %s missing", path)
			continue
		}
		for _, m := range methods {
			if item.GetOperation(m) == nil {
				t.Errorf("%s %s missing", m, path)
			}
		}
	}
}
