// Package apiclient is the one test client of the HTTP API, used by the
// in-process tests of internal/httpapi and the end-to-end tests of e2e
// alike. Every exchange it makes is checked against api/openapi.yaml (the
// response always, the request when the test means it to be valid), and
// every request carries an X-Request-ID that must come back unchanged, so
// no test can talk to the API without the contract being checked.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/usersvc/usersvc/internal/testenv/apispec"
)

// Client talks HTTP to one base URL and reports to one test. Every request
// carries a fresh X-Request-ID (unless the caller sets one or asks for
// none), and every exchange is checked: the ID must come back unchanged, the
// response must carry exactly one, and the exchange must match
// api/openapi.yaml.
type Client struct {
	// HTTP sends the requests. New sets a client with a 20-second timeout;
	// a test replaces it to reach a server another way (TLS, a chosen
	// source address, a handler called in process).
	HTTP *http.Client

	t    testing.TB
	base string
	ids  *ids // shared with the copies With makes, so IDs stay unique
}

// ids numbers the request IDs of a client.
type ids struct {
	prefix string
	n      atomic.Int64
}

func (s *ids) next() string { return s.prefix + strconv.FormatInt(s.n.Add(1), 10) }

// New returns a client for base (scheme, host and port, no trailing slash)
// reporting to t. It fails the test at once when api/openapi.yaml does not
// load, since no exchange could be checked.
func New(t testing.TB, base string) *Client {
	t.Helper()
	if _, _, err := apispec.Load(); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return &Client{t: t, base: base,
		ids:  &ids{prefix: "test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"},
		HTTP: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// With returns a copy of c that reports to t, for a subtest. The copy
// shares the HTTP client and the request ID sequence.
func (c *Client) With(t testing.TB) *Client {
	cc := *c
	cc.t = t
	return &cc
}

// T is the test c reports to.
func (c *Client) T() testing.TB { return c.t }

// Response is a received HTTP response, body read.
type Response struct {
	t      testing.TB
	Method string
	Path   string
	Status int
	Header http.Header
	Body   []byte
}

func (r *Response) String() string {
	return fmt.Sprintf("%s %s: %d %s", r.Method, r.Path, r.Status, r.Body)
}

// WantStatus stops the test unless the response has status.
func (r *Response) WantStatus(status int) *Response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", r.Method, r.Path, r.Status, status, r.Body)
	}
	return r
}

// Decode unmarshals the JSON body into v, stopping the test when it cannot.
func (r *Response) Decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s %s: decode %s: %v", r.Method, r.Path, r.Body, err)
	}
}

// Error is the Error schema.
type Error struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details map[string]string `json:"details"`
	} `json:"error"`
}

// WantError checks status (stopping the test when it differs), code, a
// message, that details name exactly the given fields (none when fields is
// empty), and that a 401 carries WWW-Authenticate: Bearer.
func (r *Response) WantError(status int, code string, fields ...string) Error {
	r.t.Helper()
	r.WantStatus(status)
	var e Error
	r.Decode(&e)
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
	if status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") != "Bearer" {
		r.t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer (got %q)", r.Method, r.Path,
			r.Header.Get("WWW-Authenticate"))
	}
	return e
}

// Do sends a request the test considers valid — body (unless nil) as JSON,
// token (unless "") as bearer — and checks the request against the
// contract too.
func (c *Client) Do(method, path, token string, body any) *Response {
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
	return c.Exchange(Request{Method: method, Path: path, Header: hdr, Body: raw, Valid: true})
}

// Send sends an arbitrary, possibly invalid request; only the response is
// checked against the contract.
func (c *Client) Send(method, path string, hdr http.Header, body string) *Response {
	c.t.Helper()
	return c.Exchange(Request{Method: method, Path: path, Header: hdr, Body: []byte(body)})
}

// Exchange performs req. It stops the test on a transport error and marks
// it failed when the exchange breaks the contract.
func (c *Client) Exchange(req Request) *Response {
	c.t.Helper()
	r, err := c.Try(context.Background(), req)
	if err != nil {
		c.t.Fatalf("%v", err)
	}
	if r.CheckErr != nil {
		c.t.Errorf("%v", r.CheckErr)
	}
	return r.Response
}

// Request is one request to send.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Valid        bool // the test means the request to be valid: check it against the contract too
	NoID         bool // send no X-Request-ID of the client's (Header may hold one) and do not check the echo
	Chunked      bool // send the body without Content-Length
}

// WithID returns r with the X-Request-ID id.
func (r Request) WithID(id string) Request {
	if r.Header == nil {
		r.Header = http.Header{}
	} else {
		r.Header = r.Header.Clone()
	}
	r.Header.Set("X-Request-ID", id)
	return r
}

// Checked is a response with the outcome of its checks.
type Checked struct {
	*Response
	CheckErr error // the exchange breaks the contract
}

// Try performs one exchange without failing the test, for callers on
// other goroutines: err is a transport failure, CheckErr a broken
// contract.
func (c *Client) Try(ctx context.Context, req Request) (Checked, error) {
	// Canonical keys, so that an ID the caller set under "X-Request-ID"
	// (not "X-Request-Id") is found and not sent alongside the client's.
	hdr := http.Header{}
	for k, vs := range req.Header {
		for _, v := range vs {
			hdr.Add(k, v)
		}
	}
	if !req.NoID && hdr.Get("X-Request-ID") == "" {
		hdr.Set("X-Request-ID", c.ids.next())
	}
	method, path := req.Method, req.Path
	hr := newRequest(ctx, method, c.base+path, hdr, req.Body)
	if req.Chunked && len(req.Body) > 0 {
		hr.Body, hr.ContentLength = io.NopCloser(bytes.NewReader(req.Body)), -1
		hr.GetBody = nil
	}
	res, err := c.HTTP.Do(hr)
	if err != nil {
		return Checked{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return Checked{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	r := &Response{t: c.t, Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: data}
	var errs []error
	if want, got := hdr.Get("X-Request-ID"), res.Header.Get("X-Request-ID"); !req.NoID && got != want {
		errs = append(errs, fmt.Errorf("%s %s: X-Request-ID %q came back as %q", method, path, want, got))
	}
	errs = append(errs, check(newRequest(ctx, method, c.base+path, hdr, req.Body), r, req.Valid))
	return Checked{Response: r, CheckErr: errors.Join(errs...)}, nil
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

// check checks one exchange against the contract: the response always, the
// request when the test means it to be valid. Every response carries
// exactly one X-Request-ID. A response to a path or method the document
// does not know must be 404 or 405 with the Error schema.
func check(req *http.Request, r *Response, validRequest bool) error {
	method, path := req.Method, req.URL.RequestURI()
	var errs []error
	if n := len(r.Header.Values("X-Request-ID")); n != 1 {
		errs = append(errs, fmt.Errorf("%s %s: %d X-Request-ID headers on the response, want 1", method, path, n))
	}
	doc, router, err := apispec.Load()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("api/openapi.yaml: %w", err))...)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return errors.Join(append(errs, checkUnrouted(doc, r, method, path, err)...)...)
	}
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

// checkUnrouted checks a response to a request outside the document: 404
// for an unknown path, 405 with Allow for an unknown method, either with a
// JSON body of the Error schema.
func checkUnrouted(doc *openapi3.T, r *Response, method, path string, routeErr error) []error {
	var errs []error
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound) && r.Status == http.StatusNotFound:
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) && r.Status == http.StatusMethodNotAllowed:
		if r.Header.Get("Allow") == "" {
			errs = append(errs, fmt.Errorf("%s %s: 405 without Allow", method, path))
		}
	default:
		return []error{fmt.Errorf("%s %s: not in api/openapi.yaml (%v), answered %d", method, path, routeErr, r.Status)}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		errs = append(errs, fmt.Errorf("%s %s: error Content-Type %q", method, path, ct))
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return append(errs, fmt.Errorf("%s %s: error body is not JSON: %w", method, path, err))
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		errs = append(errs, fmt.Errorf("%s %s: error body does not match the Error schema: %w", method, path, err))
	}
	return errs
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

// Bearer is an Authorization header with the bearer token tok.
func Bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// JSONHeader is a Content-Type: application/json header, with a bearer
// token unless tok is "".
func JSONHeader(tok string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return h
}
