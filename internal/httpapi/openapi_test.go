package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/usersvc/usersvc/internal/testenv/apispec"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The OpenAPI document is loaded, validated and turned into a router once;
// every HTTP exchange of every test goes through exchange, which checks the
// response (and, for requests the test means to be valid, the request)
// against it. No test talks to the server any other way, so none can forget
// the check.
func loadSpec() (*openapi3.T, routers.Router, error) { return apispec.Load() }

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc, _, err := loadSpec()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	// Every route of the API is described.
	want := map[string][]string{
		"/user":                  {"GET", "POST"},
		"/user/{id}":             {"DELETE", "GET", "PUT"},
		"/user/{id}/sessions":    {"DELETE", "GET"},
		"/user/token":            {"DELETE", "POST"},
		"/user/password":         {"POST", "PUT"},
		"/user/verification":     {"POST", "PUT"},
		"/.well-known/jwks.json": {"GET"},
		"/openapi.yaml":          {"GET"},
		"/healthz":               {"GET"},
		"/readyz":                {"GET"},
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

// response is a received HTTP response, body read.
type response struct {
	t      *testing.T
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) wantStatus(status int) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// apiError is the Error schema.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details map[string]string `json:"details"`
	} `json:"error"`
}

// wantError checks status, code and that details name exactly the given
// fields (none when fields is empty).
func (r *response) wantError(status int, code string, fields ...string) apiError {
	r.t.Helper()
	r.wantStatus(status)
	var e apiError
	r.decode(&e)
	if e.Error.Code != code {
		r.t.Errorf("error code %q, want %q (%s)", e.Error.Code, code, r.Body)
	}
	if e.Error.Message == "" {
		r.t.Errorf("error without message: %s", r.Body)
	}
	if len(e.Error.Details) != len(fields) {
		r.t.Errorf("details %v, want fields %v", e.Error.Details, fields)
	}
	for _, f := range fields {
		if e.Error.Details[f] == "" {
			r.t.Errorf("details %v do not name %q", e.Error.Details, f)
		}
	}
	if status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") != "Bearer" {
		r.t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", r.Header.Get("WWW-Authenticate"))
	}
	return e
}

// do sends a request the test considers valid: body (if not nil) as JSON,
// token (if not "") as bearer. The request itself is checked against the
// document too.
func (e *env) do(method, path, tok string, body any) *response {
	e.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
	}
	hdr := http.Header{}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	if tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	return e.exchange(method, path, hdr, raw, true)
}

// send sends an arbitrary, possibly invalid request; only the response is
// checked against the document.
func (e *env) send(method, path string, hdr http.Header, body string) *response {
	e.t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	return e.exchange(method, path, hdr, []byte(body), false)
}

// exchange performs one HTTP round trip and validates it against the
// OpenAPI document.
func (e *env) exchange(method, path string, hdr http.Header, body []byte, validRequest bool) *response {
	e.t.Helper()
	res, err := e.http.Client().Do(e.newRequest(method, path, hdr, body))
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	r := &response{t: e.t, Status: res.StatusCode, Header: res.Header, Body: data}
	e.check(e.newRequest(method, path, hdr, body), r, validRequest)
	return r
}

// serveFrom calls the handler directly as if the TCP peer were remoteAddr
// (which a real client connection from the test cannot fake), validating
// the response like exchange.
func (e *env) serveFrom(remoteAddr, method, path string, hdr http.Header) *response {
	e.t.Helper()
	req := e.newRequest(method, path, hdr, nil)
	req.RemoteAddr = remoteAddr
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	r := &response{t: e.t, Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	e.check(e.newRequest(method, path, hdr, nil), r, false)
	return r
}

func (e *env) newRequest(method, path string, hdr http.Header, body []byte) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if hdr != nil {
		req.Header = hdr.Clone()
	}
	return req
}

// check validates one exchange: the response always, the request when the
// test means it to be valid. Responses to paths or methods the document
// does not know must be 404 or 405 with the Error schema.
func (e *env) check(req *http.Request, r *response, validRequest bool) {
	e.t.Helper()
	method, path := req.Method, req.URL.RequestURI()
	doc, router, err := loadSpec()
	if err != nil {
		e.t.Fatalf("api/openapi.yaml: %v", err)
	}
	if r.Header.Get("X-Request-ID") == "" {
		e.t.Errorf("%s %s: no X-Request-ID on the response", method, path)
	}
	ctx := context.Background()
	route, params, err := router.FindRoute(req)
	if err != nil {
		e.checkUnrouted(doc, r, method, path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: checkBearer, MultiError: true}}
	if validRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			e.t.Errorf("%s %s: request does not match api/openapi.yaml: %v", method, path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.Status, Header: r.Header,
		Body:    io.NopCloser(bytes.NewReader(r.Body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		e.t.Errorf("%s %s: response %d does not match api/openapi.yaml: %v\nbody: %s", method, path, r.Status, err, r.Body)
	}
	// ValidateResponse ignores a body where the document declares none.
	if spec := route.Operation.Responses.Status(r.Status); spec != nil && len(spec.Value.Content) == 0 && len(r.Body) > 0 {
		e.t.Errorf("%s %s: response %d has a body the document does not declare: %s", method, path, r.Status, r.Body)
	}
}

// checkUnrouted validates a response to a request outside the document.
func (e *env) checkUnrouted(doc *openapi3.T, r *response, method, path string, routeErr error) {
	e.t.Helper()
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound) && r.Status == http.StatusNotFound:
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) && r.Status == http.StatusMethodNotAllowed:
		if r.Header.Get("Allow") == "" {
			e.t.Errorf("%s %s: 405 without Allow", method, path)
		}
	default:
		e.t.Errorf("%s %s: not in api/openapi.yaml (%v), answered %d", method, path, routeErr, r.Status)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		e.t.Errorf("%s %s: error Content-Type %q", method, path, r.Header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		e.t.Errorf("%s %s: error body is not JSON: %v", method, path, err)
		return
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		e.t.Errorf("%s %s: error body does not match the Error schema: %v", method, path, err)
	}
}

// checkBearer is the request validator's view of bearerAuth: a request the
// test calls valid must carry a syntactically valid bearer credential where
// the operation requires one.
func checkBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return errors.New("unknown security scheme " + in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); !ok || tok == "" {
		return errors.New("no bearer token")
	}
	return nil
}
