package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/api"
	"github.com/usersvc/usersvc/internal/health"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var h struct {
		Status, Error string
		Checks        map[string]string
	}
	e.Do("GET", "/healthz", "", nil).WantStatus(200).Decode(&h)
	if h.Status != "ok" {
		t.Errorf("healthz %+v", h)
	}
	e.Do("GET", "/readyz", "", nil).WantStatus(200).Decode(&h)
	if h.Status != "ready" {
		t.Errorf("readyz %+v", h)
	}

	var ready atomicError
	e2 := newEnv(t, func(c *httpapi.Config) {
		c.Ready = func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("readiness check without deadline")
			}
			return ready.get()
		}
	})
	e2.Do("GET", "/readyz", "", nil).WantStatus(200)
	ready.set(errors.New("no user service instance registered"))
	e2.Do("GET", "/readyz", "", nil).WantStatus(503).Decode(&h)
	if h.Status != "unavailable" || h.Error != "user.service: no user service instance registered" ||
		h.Checks["user.service"] != "no user service instance registered" {
		t.Errorf("readyz %+v", h)
	}
	// Liveness does not depend on readiness.
	e2.Do("GET", "/healthz", "", nil).WantStatus(200)

	// A degraded dependency (the registry answering from its cache) is
	// named but leaves the API ready.
	e3 := newEnv(t, func(c *httpapi.Config) {
		c.Degraded = []health.Check{{Name: "registry", Fn: func(context.Context) error {
			return errors.New("registry unreachable, serving from cache")
		}}}
	})
	e3.Do("GET", "/readyz", "", nil).WantStatus(200).Decode(&h)
	if h.Status != "ready" || h.Checks["registry"] != "degraded: registry unreachable, serving from cache" {
		t.Errorf("readyz with the registry degraded: %+v", h)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.Do("GET", "/openapi.yaml", "", nil).WantStatus(200)
	if !bytes.Equal(r.Body, api.OpenAPI) || r.Header.Get("Content-Type") != "application/yaml" {
		t.Errorf("served %d bytes as %q", len(r.Body), r.Header.Get("Content-Type"))
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Send("GET", "/nope", nil, "").WantError(404, "not_found")
	e.Send("GET", "/users", apiclient.Bearer(e.admin.Access), "").WantError(404, "not_found")
	e.Send("GET", "/user/", apiclient.Bearer(e.admin.Access), "").WantError(404, "not_found")
	e.Send("GET", "/user/"+e.admin.ID+"/extra", apiclient.Bearer(e.admin.Access), "").WantError(404, "not_found")

	r := e.Send("PATCH", "/user/"+e.admin.ID, apiclient.Bearer(e.admin.Access), "")
	r.WantError(405, "method_not_allowed")
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PUT") ||
		!strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
	e.Send("POST", "/healthz", nil, "").WantError(405, "method_not_allowed")
	e.Send("DELETE", "/user", nil, "").WantError(405, "method_not_allowed")
	// Literal paths next to /user/{id} are resources of their own.
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/user/password", "POST, PUT"},
		{"DELETE", "/user/password", "POST, PUT"},
		{"GET", "/user/token", "POST, DELETE"},
		{"PUT", "/user/token", "POST, DELETE"},
	} {
		r := e.Send(tc.method, tc.path, apiclient.Bearer(e.admin.Access), "")
		r.WantError(405, "method_not_allowed")
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	get := func(id string) string {
		h := apiclient.Bearer(e.admin.Access)
		if id != "" {
			h.Set("X-Request-ID", id)
		}
		// NoID: the client adds none of its own when id is "" and leaves
		// the echo to this test, since an insane ID is replaced.
		return e.Exchange(apiclient.Request{Method: "GET", Path: "/user/" + e.admin.ID, Header: h, NoID: true}).
			WantStatus(200).Header.Get("X-Request-ID")
	}

	const mine = "req-4711/abc:DEF"
	if got := get(mine); got != mine {
		t.Errorf("echoed %q, want %q", got, mine)
	}
	// The one RPC of the request carried it to the service in go-micro
	// metadata.
	if calls := e.spy.callsOf(mine); !slices.Equal(calls, []string{"Get"}) {
		t.Errorf("service saw %q with request ID %q, want exactly one Get", calls, mine)
	}
	if !strings.Contains(e.logs.String(), `"transaction.id":"`+mine+`"`) {
		t.Error("request ID not in the access log")
	}

	generated := get("")
	if generated == "" || generated == get("") {
		t.Errorf("generated IDs %q are not unique", generated)
	}
	for _, bad := range []string{strings.Repeat("x", 129), "caf\u00e9"} {
		if got := get(bad); got == bad || got == "" {
			t.Errorf("insane ID %q adopted as %q", bad, got)
		}
	}
	if got := get(strings.Repeat("x", 128)); got != strings.Repeat("x", 128) {
		t.Errorf("128-character ID replaced by %q", got)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := apiclient.Bearer(e.admin.Access)
	h.Set("X-Request-ID", "log-test-1")
	e.Send("GET", "/user/"+e.admin.ID, h, "").WantStatus(200)

	line := e.logLine(func(m map[string]any) bool {
		return m["message"] == "http request" && m["transaction.id"] == "log-test-1"
	})
	if line == nil {
		t.Fatalf("no access log line in\n%s", e.logs.String())
	}
	if line["http.request.method"] != "GET" || line["http.route"] != "/user/:id" || line["http.response.status_code"] != float64(200) ||
		line["client.ip"] != "127.0.0.1" || line["log.level"] != "info" || line["url.path"] != "/user/"+e.admin.ID ||
		line["service.name"] != "user.api" {
		t.Errorf("access log line %v", line)
	}
	if d, ok := line["event.duration"].(float64); !ok || d <= 0 {
		t.Errorf("event.duration %v", line["event.duration"])
	}
}

// TestClientIPTrustedProxies: X-Forwarded-For counts only when the TCP peer
// is one of Config.TrustedProxies; by default no peer is trusted, so a
// client on a private network cannot choose its address either.
func TestClientIPTrustedProxies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	byDefault := newEnv(t)
	for _, tc := range []struct {
		e                     *env
		peer, forwarded, want string
	}{
		{e, "10.1.2.3:5555", "203.0.113.7", "203.0.113.7"},
		{e, "192.168.1.1:5555", "203.0.113.8", "192.168.1.1"},
		{e, "[::1]:5555", "203.0.113.9", "203.0.113.9"},
		{e, "198.51.100.4:5555", "203.0.113.10", "198.51.100.4"},
		{byDefault, "10.1.2.4:5555", "203.0.113.11", "10.1.2.4"},
		{byDefault, "127.0.0.1:5555", "203.0.113.12", "127.0.0.1"},
	} {
		e := tc.e
		h := http.Header{}
		h.Set("X-Forwarded-For", tc.forwarded)
		h.Set("X-Request-ID", "ip-"+tc.peer)
		e.serveFrom(tc.peer, "GET", "/healthz", h).WantStatus(200)
		line := e.logLine(func(m map[string]any) bool { return m["transaction.id"] == "ip-"+tc.peer })
		if line == nil || line["client.ip"] != tc.want {
			t.Errorf("peer %s forwarding for %s: logged %v, want client_ip %s", tc.peer, tc.forwarded, line, tc.want)
		}
	}
}

// TestRecovery: a panic becomes a logged JSON 500 without any trace of the
// code in the response.
func TestRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		c.Middleware = append(c.Middleware, func(c *gin.Context) {
			if c.GetHeader("X-Test-Panic") != "" {
				panic("boom: secret detail")
			}
		})
	})
	r := e.Send("GET", "/healthz", http.Header{"X-Test-Panic": {"1"}, "X-Request-ID": {"panic-1"}}, "")
	r.WantError(500, "internal")
	if strings.Contains(string(r.Body), "boom") || strings.Contains(string(r.Body), "goroutine") {
		t.Errorf("response reveals the panic: %s", r.Body)
	}
	line := e.logLine(func(m map[string]any) bool { return m["message"] == "panic in HTTP handler" })
	if line == nil || line["transaction.id"] != "panic-1" || !strings.Contains(line["panic"].(string), "boom") ||
		!strings.Contains(line["stack"].(string), "goroutine") {
		t.Errorf("panic log line %v", line)
	}
	// The server goes on serving.
	e.Do("GET", "/healthz", "", nil).WantStatus(200)
}

// TestExtraMiddleware: Config.Middleware runs before every route, known or
// not, e.g. a rate limiter answering 429.
func TestExtraMiddleware(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		c.Middleware = append(c.Middleware, func(c *gin.Context) {
			if c.GetHeader("X-Test-Limit") != "" {
				c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": gin.H{
					"code": "resource_exhausted", "message": "slow down"}})
			}
		})
	})
	e.Send("POST", "/user/token", http.Header{"X-Test-Limit": {"1"}}, "").WantError(429, "resource_exhausted")
	e.Send("GET", "/.well-known/jwks.json", http.Header{"X-Test-Limit": {"1"}}, "").WantError(429, "resource_exhausted")
}

// TestServiceUnavailable: with no user-service instance left, calls are 503
// unavailable, not 500.
func TestServiceUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stopRPC()
	e.Do("GET", "/user/"+e.admin.ID, e.admin.Access, nil).WantError(503, "unavailable")
	e.Do("POST", "/user/token", "", map[string]any{"email": "admin@example.com", "password": adminPassword}).
		WantError(503, "unavailable")
	e.Do("GET", "/.well-known/jwks.json", "", nil).WantError(503, "unavailable")
	if !strings.Contains(e.logs.String(), "user service unavailable") {
		t.Error("503 not logged")
	}
}

// TestRPCTimeout: a call slower than Config.RPCTimeout is abandoned with
// 503 instead of holding the client.
func TestRPCTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) { c.RPCTimeout = 200 * time.Millisecond })
	e.spy.keysDelay.Store(int64(5 * time.Second))
	start := time.Now()
	e.Do("GET", "/.well-known/jwks.json", "", nil).WantError(503, "unavailable")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v despite a 200ms RPC timeout", d)
	}
}

// TestInternalErrorsRevealNothing: a storage failure is a 500 whose body
// says "internal error" and nothing of the SQL or driver error, which is
// logged instead.
func TestInternalErrorsRevealNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.Do("GET", "/user/"+e.admin.ID, e.admin.Access, nil)
	r.WantError(500, "internal")
	var body apiclient.Error
	r.Decode(&body)
	if body.Error.Message != "internal error" || strings.Contains(strings.ToLower(string(r.Body)), "sql") {
		t.Errorf("500 body %s", r.Body)
	}
	if !strings.Contains(e.logs.String(), "user service call failed") {
		t.Errorf("500 not logged:\n%s", e.logs.String())
	}
}

// logLine returns the first JSON log line match accepts, or nil.
func (e *env) logLine(match func(map[string]any) bool) map[string]any {
	for _, l := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && match(m) {
			return m
		}
	}
	return nil
}

// atomicError is an error shared between the test and the server's
// goroutines.
type atomicError struct {
	mu  sync.Mutex
	err error
}

func (a *atomicError) set(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
}

func (a *atomicError) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Every route makes exactly one RPC: the service authenticates the bearer
// token itself, so the API no longer calls Validate first.
func TestOneRPCPerRequest(t *testing.T) {
	e := newEnv(t)
	u := e.register("one-rpc@example.com", "One")
	pw := newPassword
	steps := []struct {
		method, path, token string
		body                any
		status              int
		rpc                 string
	}{
		{"GET", "/user/" + u.ID, u.Access, nil, 200, "Get"},
		{"GET", "/user/" + e.admin.ID, e.admin.Access, nil, 200, "Get"},
		{"GET", "/user/" + u.ID, e.admin.Access, nil, 200, "Get"},
		{"GET", "/user?page_size=5", e.admin.Access, nil, 200, "Pagination"},
		{"PUT", "/user/" + u.ID, u.Access, map[string]any{"name": "Renamed"}, 200, "Update"},
		{"POST", "/user", e.admin.Access, map[string]any{"email": "by-admin@example.com", "password": userPassword, "name": "B"}, 201, "Create"},
		{"POST", "/user/token", "", map[string]any{"email": u.Email, "password": userPassword}, 200, "Auth"},
		{"POST", "/user/password", "", map[string]any{"email": u.Email}, 202, "CreatePasswordReset"},
		{"PUT", "/user/password", "", map[string]any{"token": "x", "password": pw}, 400, "ResetPassword"},
		{"DELETE", "/user/" + u.ID, e.admin.Access, nil, 204, "Delete"},
	}
	for i, st := range steps {
		id := fmt.Sprintf("one-rpc-%d", i)
		h := apiclient.Bearer(st.token)
		if st.token == "" {
			h = http.Header{}
		}
		h.Set("X-Request-ID", id)
		body := ""
		if st.body != nil {
			b, _ := json.Marshal(st.body)
			body = string(b)
			h.Set("Content-Type", "application/json")
		}
		e.Send(st.method, st.path, h, body).WantStatus(st.status)
		if calls := e.spy.callsOf(id); !slices.Equal(calls, []string{st.rpc}) {
			t.Errorf("%s %s made RPCs %q, want exactly [%s]", st.method, st.path, calls, st.rpc)
		}
	}
}
