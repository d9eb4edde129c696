package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv/apispec"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBuild()
	os.Exit(code)
}

// The contract, loaded and validated once per test binary. Every response
// the tests receive is checked against it — the same check
// internal/httpapi's tests make in-process, here through the gateway and
// real processes, where a proxy that drops a header or rewrites an error
// would show.
func loadSpec() (*openapi3.T, routers.Router, error) { return apispec.Load() }

// client talks HTTP to one base URL. Every request carries a fresh
// X-Request-ID (unless the caller sets one), and every exchange is checked:
// the ID must come back unchanged and the response must match
// api/openapi.yaml.
type client struct {
	t      testing.TB
	base   string
	hc     *http.Client
	prefix string
	n      atomic.Int64
}

func newClient(t testing.TB, base string) *client {
	return &client{t: t, base: base, prefix: "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// response is a received HTTP response, body read.
type response struct {
	t      testing.TB
	Method string
	Path   string
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) String() string {
	return fmt.Sprintf("%s %s: %d %s", r.Method, r.Path, r.Status, r.Body)
}

func (r *response) wantStatus(status int) *response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", r.Method, r.Path, r.Status, status, r.Body)
	}
	return r
}

func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s %s: decode %s: %v", r.Method, r.Path, r.Body, err)
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

// wantError checks status, code and that details name exactly fields.
func (r *response) wantError(status int, code string, fields ...string) apiError {
	r.t.Helper()
	r.wantStatus(status)
	var e apiError
	r.decode(&e)
	if e.Error.Code != code {
		r.t.Errorf("%s %s: error code %q, want %q (%s)", r.Method, r.Path, e.Error.Code, code, r.Body)
	}
	if e.Error.Message == "" {
		r.t.Errorf("%s %s: error without message: %s", r.Method, r.Path, r.Body)
	}
	if len(e.Error.Details) != len(fields) {
		r.t.Errorf("%s %s: details %v, want fields %v", r.Method, r.Path, e.Error.Details, fields)
	}
	for _, f := range fields {
		if e.Error.Details[f] == "" {
			r.t.Errorf("%s %s: details %v do not name %q", r.Method, r.Path, e.Error.Details, f)
		}
	}
	return e
}

// do sends a request the test considers valid — body (unless nil) as
// JSON, token (unless "") as bearer — and checks the request against the
// contract too.
func (c *client) do(method, path, token string, body any) *response {
	c.t.Helper()
	var raw []byte
	hdr := http.Header{}
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatalf("marshal: %v", err)
		}
		hdr.Set("Content-Type", "application/json")
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	return c.exchange(request{method: method, path: path, hdr: hdr, body: raw, valid: true})
}

// send sends an arbitrary, possibly invalid request; only the response is
// checked against the contract.
func (c *client) send(method, path string, hdr http.Header, body []byte) *response {
	c.t.Helper()
	return c.exchange(request{method: method, path: path, hdr: hdr, body: body})
}

// exchange performs req and fails the test on a transport error, marks it
// failed when the exchange breaks the contract.
func (c *client) exchange(req request) *response {
	c.t.Helper()
	r, err := c.try(context.Background(), req)
	if err != nil {
		c.t.Fatalf("%v", err)
	}
	if r.checkErr != nil {
		c.t.Errorf("%v", r.checkErr)
	}
	return r.response
}

// request is one request to send.
type request struct {
	method, path string
	hdr          http.Header
	body         []byte
	valid        bool // the test means the request to be valid: check it against the contract too
	noID         bool // send no X-Request-ID of the client's (hdr may hold one) and do not check the echo
	chunked      bool // send the body without Content-Length
}

// withID returns r with the X-Request-ID id.
func (r request) withID(id string) request {
	if r.hdr == nil {
		r.hdr = http.Header{}
	} else {
		r.hdr = r.hdr.Clone()
	}
	r.hdr.Set("X-Request-ID", id)
	return r
}

// checked is a response with the outcome of its checks.
type checked struct {
	*response
	checkErr error // the exchange breaks the contract
}

// try performs one exchange without failing the test, for callers on
// other goroutines: err is a transport failure, checkErr a broken
// contract.
func (c *client) try(ctx context.Context, req request) (checked, error) {
	hdr := http.Header{}
	if req.hdr != nil {
		hdr = req.hdr.Clone()
	}
	if !req.noID && hdr.Get("X-Request-ID") == "" {
		hdr.Set("X-Request-ID", c.prefix+strconv.FormatInt(c.n.Add(1), 10))
	}
	method, path := req.method, req.path
	hr := newRequest(ctx, method, c.base+path, hdr, req.body)
	if req.chunked && len(req.body) > 0 {
		hr.Body, hr.ContentLength = io.NopCloser(bytes.NewReader(req.body)), -1
		hr.GetBody = nil
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return checked{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return checked{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	r := &response{t: c.t, Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: data}
	var errs []error
	if n := len(res.Header.Values("X-Request-ID")); n != 1 {
		errs = append(errs, fmt.Errorf("%s %s: %d X-Request-ID headers on the response, want 1", method, path, n))
	}
	if want, got := hdr.Get("X-Request-ID"), res.Header.Get("X-Request-ID"); !req.noID && got != want {
		errs = append(errs, fmt.Errorf("%s %s: X-Request-ID %q came back as %q", method, path, want, got))
	}
	errs = append(errs, validate(newRequest(ctx, method, c.base+path, hdr, req.body), r, req.valid))
	return checked{response: r, checkErr: errors.Join(errs...)}, nil
}

func newRequest(ctx context.Context, method, url string, hdr http.Header, body []byte) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		panic(err) // method and URL are the test's own
	}
	if len(body) == 0 {
		req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
	}
	req.Header = hdr.Clone()
	return req
}

// validate checks one exchange against the contract: the response always,
// the request when the test means it to be valid. A response to a path or
// method the document does not know must be 404 or 405 with the Error
// schema.
func validate(req *http.Request, r *response, validRequest bool) error {
	method, path := req.Method, req.URL.RequestURI()
	doc, router, err := loadSpec()
	if err != nil {
		return fmt.Errorf("api/openapi.yaml: %w", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return checkUnrouted(doc, r, method, path, err)
	}
	var errs []error
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: checkBearer, MultiError: true}}
	if validRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: request does not match api/openapi.yaml: %w", method, path, err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.Status, Header: r.Header,
		Body:    io.NopCloser(bytes.NewReader(r.Body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("%s %s: response %d does not match api/openapi.yaml: %w\nbody: %s",
			method, path, r.Status, err, r.Body))
	}
	// ValidateResponse ignores a body where the document declares none.
	if spec := route.Operation.Responses.Status(r.Status); spec != nil && len(spec.Value.Content) == 0 && len(r.Body) > 0 {
		errs = append(errs, fmt.Errorf("%s %s: response %d has a body the document does not declare: %s",
			method, path, r.Status, r.Body))
	}
	return errors.Join(errs...)
}

// checkUnrouted validates a response to a request outside the document.
func checkUnrouted(doc *openapi3.T, r *response, method, path string, routeErr error) error {
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound) && r.Status == http.StatusNotFound:
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) && r.Status == http.StatusMethodNotAllowed:
		if r.Header.Get("Allow") == "" {
			return fmt.Errorf("%s %s: 405 without Allow", method, path)
		}
	default:
		return fmt.Errorf("%s %s: not in api/openapi.yaml (%v), answered %d", method, path, routeErr, r.Status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("%s %s: error Content-Type %q", method, path, ct)
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return fmt.Errorf("%s %s: error body is not JSON: %w", method, path, err)
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		return fmt.Errorf("%s %s: error body does not match the Error schema: %w", method, path, err)
	}
	return nil
}

// checkBearer is the request validator's view of bearerAuth: a request the
// test calls valid must carry a bearer credential where the operation
// requires one.
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

// jsonHeader is a Content-Type: application/json header, with a bearer
// token unless tok is "".
func jsonHeader(tok string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return h
}
