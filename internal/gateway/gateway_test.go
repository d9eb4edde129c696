package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/gateway"
	"github.com/usersvc/usersvc/internal/health"
)

// fakeDiscovery is a registry the test edits: Set reports the new list to
// every running Watch before it returns, so a request sent after Set sees it.
type fakeDiscovery struct {
	mu       sync.Mutex
	addrs    map[string][]string
	watchers map[string][]func([]string)
}

func newFakeDiscovery() *fakeDiscovery {
	return &fakeDiscovery{addrs: map[string][]string{}, watchers: map[string][]func([]string){}}
}

func (f *fakeDiscovery) Watch(ctx context.Context, service string, update func([]string)) error {
	f.mu.Lock()
	update(slices.Clone(f.addrs[service]))
	f.watchers[service] = append(f.watchers[service], update)
	f.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (f *fakeDiscovery) Set(service string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[service] = addrs
	for _, update := range f.watchers[service] {
		update(slices.Clone(addrs))
	}
}

func (f *fakeDiscovery) watching(service string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers[service]) > 0
}

// backend is an instance of a service: an httptest server that counts its
// requests, remembers the last one, and answers with its name.
type backend struct {
	name    string
	srv     *httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	lastReq *http.Request
	body    []byte
	handler http.HandlerFunc // optional override
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.hits.Add(1)
		b.mu.Lock()
		b.lastReq, b.body = r, body
		h := b.handler
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", b.name)
		fmt.Fprintf(w, "%s %s %s", b.name, r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) last() (*http.Request, []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastReq, b.body
}

func (b *backend) setHandler(h http.HandlerFunc) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// deadAddr is an address nothing listens on: connecting is refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type env struct {
	t    *testing.T
	disc *fakeDiscovery
	gw   *gateway.Gateway
	srv  *httptest.Server
}

const api = "user.api"

// newEnv starts a gateway with cfg (default: "/user" → user.api) behind an
// httptest server, with the given instances of user.api registered.
func newEnv(t *testing.T, cfg gateway.Config, addrs ...string) *env {
	t.Helper()
	if cfg.Routes == nil {
		cfg.Routes = []gateway.Route{{Prefix: "/user", Service: api}}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	disc := newFakeDiscovery()
	disc.Set(api, addrs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	gw, err := gateway.New(ctx, cfg, disc)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every service is watched, so the first request sees the
	// instances set above.
	for _, r := range cfg.Routes {
		testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return disc.watching(r.Service) })
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &env{t: t, disc: disc, gw: gw, srv: srv}
}

type result struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(method, path string, body io.Reader, header ...string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path string, header ...string) result {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil, header...)
}

// wantError checks an error response: status, envelope code, and that it
// carries a request ID.
func wantError(t *testing.T, r result, status int, code string) map[string]string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var env struct {
		Error map[string]string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &env); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if env.Error["code"] != code || env.Error["message"] == "" {
		t.Errorf("error = %v, want code %q and a message", env.Error, code)
	}
	return env.Error
}

func TestRoutingByPrefix(t *testing.T) {
	users, admin, keys := newBackend(t, "users"), newBackend(t, "admin"), newBackend(t, "keys")
	e := newEnv(t, gateway.Config{Routes: []gateway.Route{
		{Prefix: "/user", Service: api},
		{Prefix: "/user/admin", Service: "admin.api"},
		{Prefix: "/.well-known/", Service: "keys.api"},
	}}, users.addr())
	e.disc.Set("admin.api", admin.addr())
	e.disc.Set("keys.api", keys.addr())

	for path, want := range map[string]string{
		"/user":                  "users GET /user",
		"/user/":                 "users GET /user/",
		"/user/me?x=1&y=%20":     "users GET /user/me?x=1&y=%20",
		"/user/admin":            "admin GET /user/admin",
		"/user/admin/stats":      "admin GET /user/admin/stats",
		"/user/administrator":    "users GET /user/administrator",
		"/.well-known":           "keys GET /.well-known",
		"/.well-known/jwks.json": "keys GET /.well-known/jwks.json",
	} {
		if r := e.get(path); r.status != http.StatusOK || r.body != want {
			t.Errorf("GET %s = %d %q, want %q", path, r.status, r.body, want)
		}
	}
	for _, path := range []string{"/username", "/users", "/", "/other/user", "/.well-knownx"} {
		wantError(t, e.get(path), http.StatusNotFound, "not_found")
	}
	// A ".." segment cannot smuggle a request past its route.
	wantError(t, e.get("/user/%2e%2e/admin/stats"), http.StatusBadRequest, "invalid_argument")
}

func TestNewRejectsBadRoutes(t *testing.T) {
	for _, routes := range [][]gateway.Route{
		nil,
		{{Prefix: "user", Service: api}},
		{{Prefix: "/user", Service: ""}},
		{{Prefix: "/user", Service: api}, {Prefix: "/user/", Service: "other"}},
	} {
		if _, err := gateway.New(context.Background(), gateway.Config{Routes: routes}, newFakeDiscovery()); err == nil {
			t.Errorf("New accepted routes %v", routes)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, a.addr(), b.addr())
	for range 100 {
		if r := e.get("/user/me"); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	if a.hits.Load() != 50 || b.hits.Load() != 50 {
		t.Errorf("spread a=%d b=%d, want 50/50", a.hits.Load(), b.hits.Load())
	}
}

// An instance shutting down while requests flow costs the clients nothing:
// connections it refuses are retried on the other instance.
func TestInstanceClosedMidStream(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, a.addr(), b.addr())
	failed := 0
	for i := range 200 {
		if i == 100 {
			a.srv.Close() // still registered: discovery has not noticed
		}
		if r := e.get(fmt.Sprintf("/user/%d", i)); r.status != http.StatusOK {
			failed++
			t.Logf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if failed > 0 {
		t.Errorf("%d of 200 requests failed", failed)
	}
	if got := a.hits.Load() + b.hits.Load(); got != 200 {
		t.Errorf("backends served %d requests, want 200", got)
	}
	if a.hits.Load() != 50 {
		t.Errorf("a served %d, want 50 (every other request until it closed)", a.hits.Load())
	}
}

// Requests in flight from many clients while an instance closes.
func TestInstanceClosedUnderConcurrentLoad(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, a.addr(), b.addr())
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				r := e.get(fmt.Sprintf("/user/%d/%d", w, i))
				if r.status != http.StatusOK {
					failed.Add(1)
				}
				done.Add(1)
			}
		})
	}
	testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return done.Load() >= 200 })
	a.srv.Close()
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of 800 requests failed", failed.Load())
	}
}

func TestInstanceRemovedFromDiscovery(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, a.addr(), b.addr())
	for range 10 {
		e.get("/user/me")
	}
	e.disc.Set(api, b.addr())
	before := a.hits.Load()
	for range 50 {
		if r := e.get("/user/me"); r.status != http.StatusOK || r.header.Get("X-Backend") != "b" {
			t.Fatalf("got %d from %q", r.status, r.header.Get("X-Backend"))
		}
	}
	if a.hits.Load() != before {
		t.Errorf("removed instance got %d more requests", a.hits.Load()-before)
	}
	if e.gw.Ready() != nil {
		t.Error("not ready with one instance")
	}
}

func TestAllInstancesDown(t *testing.T) {
	e := newEnv(t, gateway.Config{}, deadAddr(t), deadAddr(t))
	for range 3 { // also once every instance is cooling down
		r := e.get("/user/me")
		wantError(t, r, http.StatusBadGateway, "bad_gateway")
		if r.header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID on the error")
		}
	}
}

func TestNoInstance(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	msg := wantError(t, e.get("/user/me"), http.StatusServiceUnavailable, "unavailable")
	if msg["message"] != "no instance of user.api is available" {
		t.Errorf("message = %q", msg["message"])
	}
	wantError(t, e.do(http.MethodPost, "/user", strings.NewReader("{}")), http.StatusServiceUnavailable, "unavailable")
}

// A failed instance is skipped during its cooldown and back in the rotation
// after it.
func TestCooldown(t *testing.T) {
	b := newBackend(t, "b")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA := ln.Addr().String()
	ln.Close()
	var clock atomic.Int64 // nanoseconds since an arbitrary start
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e := newEnv(t, gateway.Config{FailCooldown: 300 * time.Millisecond, Now: now}, addrA, b.addr())
	for range 10 {
		if r := e.get("/user/me"); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	// A comes back on the same address.
	ln, err = net.Listen("tcp", addrA)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addrA, err)
	}
	var aHits atomic.Int64
	srvA := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { aHits.Add(1) })}
	go func() { _ = srvA.Serve(ln) }()
	t.Cleanup(func() { srvA.Close() })

	for range 10 { // within the cooldown: b only
		e.get("/user/me")
	}
	if aHits.Load() != 0 {
		t.Errorf("instance got %d requests during its cooldown", aHits.Load())
	}
	clock.Add(int64(400 * time.Millisecond)) // past the cooldown
	for range 10 {
		e.get("/user/me")
	}
	if aHits.Load() != 5 {
		t.Errorf("recovered instance got %d of 10 requests, want 5", aHits.Load())
	}
}

// The buffered body is sent again, whole, to the next instance.
func TestBodyReplayedOnRetry(t *testing.T) {
	b := newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, deadAddr(t), b.addr())
	payload := strings.Repeat(`{"email":"a@example.com"}`, 1000)
	for i := range 4 { // the dead instance comes first at least once
		r := e.do(http.MethodPost, "/user/signup", strings.NewReader(payload), "Content-Type", "application/json")
		if r.status != http.StatusOK {
			t.Fatalf("POST %d: %d %s", i, r.status, r.body)
		}
		req, body := b.last()
		if string(body) != payload || req.ContentLength != int64(len(payload)) {
			t.Fatalf("backend got %d bytes (Content-Length %d), want %d", len(body), req.ContentLength, len(payload))
		}
	}
	// A chunked body (no Content-Length) is buffered too, and sent with one.
	r := e.do(http.MethodPost, "/user/signup", io.MultiReader(strings.NewReader(payload)))
	if r.status != http.StatusOK {
		t.Fatalf("chunked POST: %d", r.status)
	}
	if req, body := b.last(); string(body) != payload || req.ContentLength != int64(len(payload)) {
		t.Fatalf("chunked: backend got %d bytes, Content-Length %d", len(body), req.ContentLength)
	}
}

func TestBodyOverLimit(t *testing.T) {
	b := newBackend(t, "b")
	e := newEnv(t, gateway.Config{MaxBodyBytes: 1000}, b.addr())
	wantError(t, e.do(http.MethodPost, "/user", strings.NewReader(strings.Repeat("x", 1001))),
		http.StatusRequestEntityTooLarge, "payload_too_large")
	wantError(t, e.do(http.MethodPost, "/user", io.MultiReader(strings.NewReader(strings.Repeat("x", 5000)))),
		http.StatusRequestEntityTooLarge, "payload_too_large")
	if b.hits.Load() != 0 {
		t.Errorf("backend got %d oversized requests", b.hits.Load())
	}
	if r := e.do(http.MethodPost, "/user", strings.NewReader(strings.Repeat("x", 1000))); r.status != http.StatusOK {
		t.Errorf("body at the limit: %d", r.status)
	}
}

// resetter accepts connections, reads the request head and resets the
// connection without answering: an instance dying with the request in hand.
func resetter(t *testing.T) (addr string, requests *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	requests = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				if n, _ := c.Read(buf); n > 0 {
					requests.Add(1)
				}
				c.(*net.TCPConn).SetLinger(0) // RST, not FIN
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), requests
}

// A connection reset before any response byte is retried for idempotent
// requests only: a POST may have run on the instance that died.
func TestResetRetriedOnlyWhenIdempotent(t *testing.T) {
	bad, badHits := resetter(t)
	good := newBackend(t, "good")
	e := newEnv(t, gateway.Config{}, bad, good.addr())

	for i := range 4 {
		if r := e.get("/user/me"); r.status != http.StatusOK {
			t.Fatalf("GET %d: %d %s", i, r.status, r.body)
		}
	}
	if badHits.Load() == 0 {
		t.Fatal("the resetting instance was never tried")
	}

	var posts502 int
	for range 4 {
		before := good.hits.Load()
		r := e.do(http.MethodPost, "/user/signup", strings.NewReader("{}"))
		switch r.status {
		case http.StatusOK:
		case http.StatusBadGateway:
			posts502++
			if good.hits.Load() != before {
				t.Error("POST was replayed after the connection reset")
			}
		default:
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	if posts502 != 2 {
		t.Errorf("%d POSTs got 502, want 2 (those sent to the resetting instance)", posts502)
	}
	// With an Idempotency-Key the client says a replay is safe.
	for range 2 {
		if r := e.do(http.MethodPost, "/user/signup", strings.NewReader("{}"), "Idempotency-Key", "k1"); r.status != http.StatusOK {
			t.Fatalf("POST with Idempotency-Key: %d %s", r.status, r.body)
		}
	}
}

// An answer, even 5xx, is final: the request ran.
func TestUpstream5xxNotRetried(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	a.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "from-backend")
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	e := newEnv(t, gateway.Config{}, a.addr(), b.addr())
	r := e.get("/user/me", "X-Request-ID", "rid-5xx")
	if r.status != http.StatusInternalServerError || b.hits.Load() != 0 {
		t.Fatalf("status %d, b hits %d; want the 500 and no retry", r.status, b.hits.Load())
	}
	if got := r.header.Values("X-Request-ID"); !slices.Equal(got, []string{"rid-5xx"}) {
		t.Errorf("X-Request-ID = %v, want exactly the request's", got)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	slow, other := newBackend(t, "slow"), newBackend(t, "other")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	e := newEnv(t, gateway.Config{UpstreamTimeout: 100 * time.Millisecond}, slow.addr(), other.addr())
	start := time.Now()
	wantError(t, e.get("/user/me"), http.StatusGatewayTimeout, "gateway_timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("504 took %v", d)
	}
	if other.hits.Load() != 0 {
		t.Error("timed-out request was retried")
	}
}

func TestRequestID(t *testing.T) {
	b := newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, b.addr())

	r := e.get("/user/me")
	req, _ := b.last()
	id := r.header.Get("X-Request-ID")
	if id == "" || req.Header.Get("X-Request-ID") != id {
		t.Errorf("generated ID: response %q, backend %q", id, req.Header.Get("X-Request-ID"))
	}
	if r2 := e.get("/user/me"); r2.header.Get("X-Request-ID") == id {
		t.Error("two requests got the same generated ID")
	}

	r = e.get("/user/me", "X-Request-ID", "client-id-42")
	req, _ = b.last()
	if r.header.Get("X-Request-ID") != "client-id-42" || req.Header.Get("X-Request-ID") != "client-id-42" {
		t.Errorf("client ID: response %q, backend %q", r.header.Get("X-Request-ID"), req.Header.Get("X-Request-ID"))
	}

	long := strings.Repeat("x", 200)
	r = e.get("/user/me", "X-Request-ID", long)
	req, _ = b.last()
	if got := req.Header.Get("X-Request-ID"); got == long || got == "" || r.header.Get("X-Request-ID") != got {
		t.Errorf("oversized ID not replaced: backend %q, response %q", got, r.header.Get("X-Request-ID"))
	}

	// Errors carry it too.
	if r := e.get("/nowhere", "X-Request-ID", "rid-404"); r.header.Get("X-Request-ID") != "rid-404" {
		t.Errorf("404 X-Request-ID = %q", r.header.Get("X-Request-ID"))
	}
}

// TestForwardingHeaders: from a trusted proxy (here loopback) the
// X-Forwarded-For chain is kept and extended, and its X-Forwarded-Proto
// (it terminated TLS) is believed.
func TestForwardingHeaders(t *testing.T) {
	b := newBackend(t, "b")
	e := newEnv(t, gateway.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, b.addr())
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := e.get("/user/me",
		"X-Forwarded-For", "203.0.113.7",
		"X-Forwarded-Proto", "https", // the trusted proxy terminated TLS
		"X-Forwarded-Host", "evil.example",
		"Traceparent", traceparent,
		"Tracestate", "vendor=opaque,other=1",
		"Connection", "X-Hop",
		"X-Hop", "secret",
	)
	if r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	req, _ := b.last()
	h := req.Header
	for name, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  strings.TrimPrefix(e.srv.URL, "http://"),
		"Traceparent":       traceparent,
		"Tracestate":        "vendor=opaque,other=1",
		"X-Hop":             "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("backend %s = %q, want %q", name, got, want)
		}
	}
	if req.Host != strings.TrimPrefix(e.srv.URL, "http://") {
		t.Errorf("Host = %q, want the client's", req.Host)
	}
}

// TestForwardingHeadersUntrusted: by default the gateway is the edge and
// trusts no peer, so what a client claims in X-Forwarded-For and
// X-Forwarded-Proto is replaced by what the gateway sees.
func TestForwardingHeadersUntrusted(t *testing.T) {
	b := newBackend(t, "b")
	e := newEnv(t, gateway.Config{}, b.addr())
	for i := range 3 {
		r := e.get("/user/me", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i), "X-Forwarded-Proto", "https")
		if r.status != http.StatusOK {
			t.Fatal(r.status)
		}
		req, _ := b.last()
		if got := req.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("backend X-Forwarded-For = %q, want only the peer 127.0.0.1", got)
		}
		if got := req.Header.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("backend X-Forwarded-Proto = %q, want this hop's http", got)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	b := newBackend(t, "b")
	// A catch-all route does not shadow the gateway's own endpoints.
	e := newEnv(t, gateway.Config{Routes: []gateway.Route{{Prefix: "/", Service: api}}})

	if r := e.get("/healthz"); r.status != http.StatusOK || r.body != `{"status":"ok"}` {
		t.Errorf("/healthz = %d %s", r.status, r.body)
	}
	if r := e.get("/readyz"); r.status != http.StatusServiceUnavailable ||
		r.body != `{"status":"unavailable","checks":{"user.api":"no instance of user.api is available"},"error":"user.api: no instance of user.api is available"}` {
		t.Errorf("/readyz with no instance = %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/healthz", nil); r.header.Get("X-Request-ID") == "" {
		t.Error("/healthz without X-Request-ID")
	}
	if e.gw.Ready() == nil {
		t.Error("Ready with no instance")
	}

	e.disc.Set(api, b.addr())
	if r := e.get("/readyz"); r.status != http.StatusOK || r.body != `{"status":"ready","checks":{"user.api":"ok"}}` {
		t.Errorf("/readyz = %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodHead, "/healthz", nil); r.status != http.StatusOK {
		t.Errorf("HEAD /healthz = %d", r.status)
	}
	wantError(t, e.do(http.MethodPost, "/healthz", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	if b.hits.Load() != 0 {
		t.Errorf("probes reached the backend %d times", b.hits.Load())
	}
	if r := e.get("/anything"); r.status != http.StatusOK {
		t.Errorf("catch-all route: %d", r.status)
	}

	// The registry answering from its cache is named, and the gateway
	// stays ready: it routes to the instances it last saw.
	e2 := newEnv(t, gateway.Config{Routes: []gateway.Route{{Prefix: "/", Service: api}},
		Degraded: []health.Check{{Name: "registry", Fn: func(context.Context) error {
			return errors.New("registry unreachable, serving from cache")
		}}}})
	e2.disc.Set(api, b.addr())
	want := `{"status":"ready","checks":{"registry":"degraded: registry unreachable, serving from cache","user.api":"ok"}}`
	if r := e2.get("/readyz"); r.status != http.StatusOK || r.body != want {
		t.Errorf("/readyz with the registry degraded = %d %s", r.status, r.body)
	}
}

// The gateway's goroutines end with its context; a request in flight when
// the server shuts down completes.
func TestShutdown(t *testing.T) {
	b := newBackend(t, "b")
	started := make(chan struct{})
	b.setHandler(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "done")
	})
	disc := newFakeDiscovery()
	disc.Set(api, b.addr())
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := gateway.New(ctx, gateway.Config{Routes: []gateway.Route{{Prefix: "/user", Service: api}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, disc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return gw.Ready() == nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw}
	go func() { _ = srv.Serve(ln) }()

	type answer struct {
		body string
		err  error
	}
	res := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/user/me")
		if err != nil {
			res <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		res <- answer{string(body), err}
	}()
	<-started
	cancel() // the process is stopping: discovery ends first
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if a := <-res; a.err != nil || a.body != "done" {
		t.Fatalf("in-flight request: %q %v", a.body, a.err)
	}
}
