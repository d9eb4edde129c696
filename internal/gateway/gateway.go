// Package gateway is the platform's HTTP entry point, between nginx and the
// HTTP API instances. It plays the part go-micro's "micro api" used to: it
// learns the instances of each HTTP service from service discovery, routes
// each request by path prefix to a service, and reverse-proxies it to one
// instance, round-robin, retrying on another instance when one cannot be
// reached.
//
// It depends on the small Discovery interface rather than on go-micro, so
// the routing and proxying logic can be tested with a fake, and the
// registry can change without touching it (rpc.Discovery implements it).
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usersvc/usersvc/internal/health"
	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/telemetry"
)

const (
	// headerRequestID ties the client's report, the gateway's log and the
	// API's and service's logs together; the API reads the same header.
	headerRequestID = reqmeta.RequestIDHeader

	defaultMaxBodyBytes    = 1 << 20
	defaultUpstreamTimeout = 10 * time.Second
	defaultFailCooldown    = 5 * time.Second
)

// Discovery reports the addresses (host:port) of a service's instances.
// Watch calls update with the full current list, first as soon as it is
// known and then on every change, never concurrently, until ctx ends.
// rpc.Discovery implements it over the go-micro registry.
type Discovery interface {
	Watch(ctx context.Context, service string, update func(addrs []string)) error
}

// Route sends the requests under Prefix to Service. The longest matching
// prefix wins, and a prefix matches whole path segments only: "/user"
// matches "/user" and "/user/..." but not "/username"; a trailing slash is
// ignored ("/.well-known/" is "/.well-known"), and "/" matches everything.
// Paths are forwarded unchanged (no prefix stripping).
type Route struct {
	Prefix  string
	Service string
}

// Config configures a Gateway. Zero values mean the defaults.
type Config struct {
	Routes []Route
	// MaxBodyBytes caps request bodies (default 1 MiB). A body is read
	// whole before it is forwarded, so that a request whose instance
	// turns out to be down can be replayed on another one; a larger body
	// is answered 413 without reaching any instance.
	MaxBodyBytes int64
	// UpstreamTimeout bounds one attempt at one instance, from dialling to
	// the end of the response body (default 10s), so a hung instance can
	// neither hold a client forever nor stall a graceful shutdown. When it
	// passes before the response headers the client gets 504 (the request
	// is not retried: the instance may have run it); after them, the
	// response is cut off. It does not suit long streams or WebSockets,
	// which the user API does not serve.
	UpstreamTimeout time.Duration
	// FailCooldown is how long an instance that could not be connected to
	// is left out of the rotation (default 5s). The registry drops a dead
	// instance only when its lease expires; until then this keeps the
	// gateway from dialling it for every request.
	FailCooldown time.Duration
	Logger       *slog.Logger // nil means slog.Default()
	// TrustedProxies are the peers (nginx, a load balancer) whose
	// X-Forwarded-For chain the gateway keeps, appending the peer's address.
	// From any other peer the chain is replaced by the peer's address, so a
	// client cannot choose the address the API rate-limits by. Empty (the
	// default) means the gateway is the edge and trusts no one.
	TrustedProxies []netip.Prefix
	// Now is the clock of the cooldowns; nil means time.Now. Tests pass a
	// clock they move by hand.
	Now func() time.Time
	// Dial connects to instances; nil means TCP with a short timeout. Dev
	// mode passes one its API's listener can recognise (app.peerGate).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Degraded are further /readyz checks that report "degraded: …" and
	// never make the gateway unready (the registry serving from cache).
	Degraded []health.Check
}

// Gateway routes and proxies requests to the instances of services. It is
// an http.Handler; besides the routes it answers GET /healthz and GET
// /readyz itself (see ServeHTTP). Create it with New.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	routes    []route // longest prefix first
	pools     []*pool // one per service, in route order
	transport *http.Transport
}

// route is a Route with its prefix normalised (no trailing slash; "" for
// "/") and its service's pool.
type route struct {
	prefix string
	pool   *pool
}

func (rt *route) matches(path string) bool {
	return strings.HasPrefix(path, rt.prefix) && (len(path) == len(rt.prefix) || path[len(rt.prefix)] == '/')
}

// New returns a gateway for cfg and starts following each routed service's
// instances through d, one Watch per service, until ctx ends. Until a
// service's first list arrives its routes answer 503 and Ready fails.
func New(ctx context.Context, cfg Config, d Discovery) (*Gateway, error) {
	if d == nil {
		return nil, errors.New("gateway: no discovery")
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("gateway: no routes")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = defaultUpstreamTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FailCooldown <= 0 {
		cfg.FailCooldown = defaultFailCooldown
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, transport: newTransport(cfg.Dial)}
	if g.log == nil {
		g.log = slog.Default()
	}

	byService := map[string]*pool{}
	seen := map[string]bool{}
	for _, r := range cfg.Routes {
		if !strings.HasPrefix(r.Prefix, "/") {
			return nil, fmt.Errorf("gateway: route prefix %q does not start with /", r.Prefix)
		}
		if r.Service == "" {
			return nil, fmt.Errorf("gateway: route %q has no service", r.Prefix)
		}
		prefix := strings.TrimRight(r.Prefix, "/")
		if seen[prefix] {
			return nil, fmt.Errorf("gateway: route prefix %q is configured twice", r.Prefix)
		}
		seen[prefix] = true
		p := byService[r.Service]
		if p == nil {
			p = g.newPool(r.Service)
			byService[r.Service] = p
			g.pools = append(g.pools, p)
		}
		g.routes = append(g.routes, route{prefix: prefix, pool: p})
	}
	slices.SortStableFunc(g.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })

	for _, p := range g.pools {
		go g.follow(ctx, d, p)
	}
	// Idle upstream connections are the only resource that outlives
	// requests; release them with the gateway.
	context.AfterFunc(ctx, g.transport.CloseIdleConnections)
	return g, nil
}

// follow keeps p's instance list current until ctx ends.
func (g *Gateway) follow(ctx context.Context, d Discovery, p *pool) {
	err := d.Watch(ctx, p.service, func(addrs []string) { g.setInstances(p, addrs) })
	if ctx.Err() == nil {
		g.log.Error("gateway: discovery stopped; the service's instance list is frozen",
			"upstream.service", p.service, "error", err)
	}
}

func (g *Gateway) setInstances(p *pool, addrs []string) {
	telemetry.GatewayInstances.WithLabelValues(p.service).Set(float64(len(addrs)))
	if added, removed := p.set(addrs); added > 0 || removed > 0 {
		g.log.Info("gateway: instances changed", "upstream.service", p.service, "upstream.instances", addrs,
			"added", added, "removed", removed)
	}
}

// Ready reports whether every routed service has at least one instance;
// /readyz answers 503 until it does, so that nginx (or the orchestrator)
// does not send traffic that could only be answered 503.
func (g *Gateway) Ready() error {
	var missing []string
	for _, p := range g.pools {
		if len(p.list()) == 0 {
			missing = append(missing, p.service)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no instance of %s is available", strings.Join(missing, ", "))
	}
	return nil
}

// readyChecks is one readiness check per routed service: an instance of it
// is known.
func (g *Gateway) readyChecks() []health.Check {
	checks := make([]health.Check, len(g.pools))
	for i, p := range g.pools {
		checks[i] = health.Check{Name: p.service, Fn: func(context.Context) error {
			if len(p.list()) == 0 {
				return errors.New(noInstanceMessage(p.service))
			}
			return nil
		}}
	}
	for _, c := range g.cfg.Degraded {
		c.Optional = true
		checks = append(checks, c)
	}
	return checks
}

// ServeHTTP answers GET|HEAD /healthz (200 while the process serves) and
// /readyz (200 or 503, from Ready) itself — they take precedence over every
// route, so a catch-all "/" route cannot shadow them — and proxies every
// other request to an instance of the service of its route.
//
// The request keeps its X-Request-ID when it is sane (1..128 printable
// ASCII) and gets a random one otherwise; the instance receives it and the
// client gets it back on every response, errors included. Errors are the
// API's JSON envelope: {"error":{"code":…,"message":…}}.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := reqmeta.RequestID(r.Header.Get(headerRequestID))
	switch r.URL.Path {
	case "/healthz":
		g.serveProbe(w, r, id, http.StatusOK, health.Live)
		return
	case "/readyz":
		rep, ok := health.Ready(r.Context(), time.Second, g.readyChecks())
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		g.serveProbe(w, r, id, status, rep)
		return
	}

	// A ".." segment could make an instance resolve a path under another
	// route's prefix than the one that chose it; such paths are not sent
	// by browsers or well-behaved clients, so they are refused outright.
	if hasDotSegment(r.URL.Path) {
		writeError(w, id, http.StatusBadRequest, "invalid_argument", "malformed request path")
		return
	}
	rt := g.route(r.URL.Path)
	if rt == nil {
		writeError(w, id, http.StatusNotFound, "not_found", "not found")
		return
	}
	if len(rt.pool.list()) == 0 {
		// Answered before reading the body: nothing could use it.
		writeError(w, id, http.StatusServiceUnavailable, "unavailable", noInstanceMessage(rt.pool.service))
		return
	}
	out := r.WithContext(telemetry.WithRequestID(context.WithValue(r.Context(), requestIDKey{}, id), id))
	if status, err := g.bufferBody(out); err != nil {
		if status == http.StatusRequestEntityTooLarge {
			writeError(w, id, status, "payload_too_large", err.Error())
		} else {
			g.log.DebugContext(out.Context(), "gateway: reading request body failed", "error", err)
			writeError(w, id, status, "invalid_argument", "could not read the request body")
		}
		return
	}
	rt.pool.proxy.ServeHTTP(w, out)
}

func (g *Gateway) route(path string) *route {
	if !strings.HasPrefix(path, "/") {
		return nil // "OPTIONS *", CONNECT's authority form: not for an instance
	}
	for i := range g.routes {
		if g.routes[i].matches(path) {
			return &g.routes[i]
		}
	}
	return nil
}

// serveProbe answers a health probe in the API's Health shape: 200
// {"status":"ok"} when err is nil, 503 {"status":"unavailable","error":…}
// otherwise, with the request ID like every other answer.
func (g *Gateway) serveProbe(w http.ResponseWriter, r *http.Request, id string, status int, report any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, id, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		return
	}
	h := w.Header()
	h.Set(headerRequestID, id)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json; charset=utf-8")
	body, _ := json.Marshal(report)
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// bufferBody reads r's body into memory (at most MaxBodyBytes) and makes it
// replayable through GetBody. It returns the status to answer on failure:
// 413 for a body over the limit, 400 when the client's body could not be
// read.
func (g *Gateway) bufferBody(r *http.Request) (int, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return 0, nil
	}
	limit := g.cfg.MaxBodyBytes
	tooLarge := fmt.Errorf("request body exceeds %d bytes", limit)
	if r.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, tooLarge
	}
	var buf []byte
	var err error
	if r.ContentLength > 0 {
		// net/http stops the body at Content-Length, so this is exact.
		buf = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, buf)
	} else {
		buf, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err == nil && int64(len(buf)) > limit {
			return http.StatusRequestEntityTooLarge, tooLarge
		}
	}
	if err != nil {
		return http.StatusBadRequest, err
	}
	// The instance gets a Content-Length even when the client chunked.
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	if len(buf) == 0 {
		r.Body, r.GetBody = http.NoBody, nil
		return 0, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return 0, nil
}

// rewrite shapes the request sent upstream. The URL's host is set per
// attempt by upstream.RoundTrip; the Host header stays the client's.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	// X-Forwarded-For is the incoming chain plus the address of whoever
	// connected to us, so the API takes the rightmost entries it trusts —
	// but only when that peer is a proxy we trust: what anyone else sends
	// is the client's own claim and is dropped. X-Forwarded-Host becomes
	// the Host header and X-Forwarded-Proto the scheme of this hop;
	// ReverseProxy already dropped the client-sent ones, and Forwarded.
	trusted := g.trusted(pr.In.RemoteAddr)
	if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 && trusted {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	// A trusted proxy that terminated TLS says so; SetXForwarded only knows
	// this hop's scheme.
	if proto := pr.In.Header.Get("X-Forwarded-Proto"); trusted && (proto == "https" || proto == "http") {
		pr.Out.Header.Set("X-Forwarded-Proto", proto)
	}
	pr.Out.URL.Scheme = "http"
	pr.Out.Header.Set(headerRequestID, requestIDOf(pr.In.Context()))
	// The body is already read (and the client got its 100 Continue);
	// asking the instance for one would only add a round trip.
	pr.Out.Header.Del("Expect")
}

// trusted reports whether the peer at remoteAddr (host:port) is one of
// Config.TrustedProxies.
func (g *Gateway) trusted(remoteAddr string) bool {
	if len(g.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// modifyResponse echoes the request ID, replacing one the instance set, so
// that the client sees exactly one.
func modifyResponse(resp *http.Response) error {
	if resp.Request != nil {
		resp.Header.Set(headerRequestID, requestIDOf(resp.Request.Context()))
	}
	return nil
}

// proxyError answers a request that got no response from any instance.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	id := requestIDOf(r.Context())
	var ue *upstreamError
	if !errors.As(err, &ue) {
		// ReverseProxy's own refusals, e.g. an invalid Upgrade.
		g.log.WarnContext(r.Context(), "gateway: proxying failed", "error", err)
		writeError(w, id, http.StatusBadGateway, "bad_gateway", "the request could not be forwarded")
		return
	}
	switch ue.kind {
	case noInstance:
		writeError(w, id, http.StatusServiceUnavailable, "unavailable", noInstanceMessage(ue.service))
	case clientGone:
		// Nobody is listening; this only keeps the status in access logs
		// honest.
		g.log.DebugContext(r.Context(), "gateway: client went away", "upstream.service", ue.service, "error", ue.err)
		writeError(w, id, http.StatusBadGateway, "bad_gateway", "the client closed the request")
	case timedOut:
		g.log.WarnContext(r.Context(), "gateway: instance did not answer in time", "upstream.service", ue.service, "upstream.instance", ue.instance,
			"timeout", g.cfg.UpstreamTimeout)
		writeError(w, id, http.StatusGatewayTimeout, "gateway_timeout", ue.service+" did not answer in time")
	default:
		g.log.WarnContext(r.Context(), "gateway: no instance answered", "upstream.service", ue.service, "attempts", ue.attempts,
			"upstream.instance", ue.instance, "error", ue.err)
		writeError(w, id, http.StatusBadGateway, "bad_gateway", "no instance of "+ue.service+" answered")
	}
}

func noInstanceMessage(service string) string {
	return "no instance of " + service + " is available"
}

// errorBody is the API's error envelope (see internal/httpapi).
type errorBody struct {
	Error errorInfo `json:"error"`
}

type errorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, requestID string, status int, code, msg string) {
	h := w.Header()
	if requestID != "" {
		h.Set(headerRequestID, requestID)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	b, _ := json.Marshal(errorBody{Error: errorInfo{Code: code, Message: msg}})
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type requestIDKey struct{}

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// hasDotSegment reports whether the path has a "." or ".." segment.
func hasDotSegment(path string) bool {
	if !strings.Contains(path, "/.") {
		return false // the hot path: no allocation, one scan
	}
	for path != "" {
		var seg string
		seg, path, _ = strings.Cut(path, "/")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers, which it would
// otherwise allocate per request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// pool is one service: its instances, as last reported by discovery, its
// round-robin counter and its proxy.
type pool struct {
	service   string
	instances atomic.Pointer[[]*instance] // replaced whole, read lock-free
	next      atomic.Uint64
	mu        sync.Mutex // serialises set
	proxy     *httputil.ReverseProxy
}

func (g *Gateway) newPool(service string) *pool {
	p := &pool{service: service}
	telemetry.GatewayRetries.WithLabelValues(service) // exported at 0 from the start
	empty := []*instance{}
	p.instances.Store(&empty)
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		ModifyResponse: modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BufferPool:     sharedBuffers,
		// Each attempt is a client span whose context the instance gets as
		// traceparent.
		Transport: &upstream{pool: p, base: telemetry.HTTPClient(g.transport), timeout: g.cfg.UpstreamTimeout,
			cooldown: g.cfg.FailCooldown, now: g.cfg.Now, log: g.log},
	}
	return p
}

var sharedBuffers = &bufferPool{}

func (p *pool) list() []*instance { return *p.instances.Load() }

// set replaces the instance list. Instances that stay keep their state (a
// running cooldown); those that left are gone for the next request at
// once. It reports how many were added and removed.
func (p *pool) set(addrs []string) (added, removed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := map[string]*instance{}
	for _, in := range p.list() {
		old[in.addr] = in
	}
	next := make([]*instance, 0, len(addrs))
	kept := map[string]bool{}
	for _, a := range addrs {
		if a == "" || kept[a] {
			continue
		}
		kept[a] = true
		in := old[a]
		if in == nil {
			in = &instance{addr: a}
			added++
		}
		next = append(next, in)
	}
	removed = len(old) - (len(next) - added)
	p.instances.Store(&next)
	return added, removed
}
