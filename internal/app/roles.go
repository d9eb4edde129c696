package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/gateway"
	"github.com/usersvc/usersvc/internal/health"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/mtls"
	"github.com/usersvc/usersvc/internal/pages"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/telemetry"
)

// APIServiceName is the API's name in the registry; the gateway routes to it.
const APIServiceName = "user.api"

// GatewayRoutes are the path prefixes the gateway sends to the user API.
var GatewayRoutes = append([]gateway.Route{
	{Prefix: "/user", Service: APIServiceName},
	{Prefix: "/.well-known/", Service: APIServiceName},
	{Prefix: "/openapi.yaml", Service: APIServiceName},
}, pageGatewayRoutes()...)

// pageGatewayRoutes sends the web pages' paths (internal/pages) to the API,
// which serves them.
func pageGatewayRoutes() []gateway.Route {
	out := make([]gateway.Route, len(pages.Paths))
	for i, p := range pages.Paths {
		out[i] = gateway.Route{Prefix: p, Service: APIServiceName}
	}
	return out
}

// Registry connects to etcd and checks that it answers, so a role whose
// registry is unreachable says so, naming the address, instead of starting
// (and logging "started") without being findable.
func Registry(cfg *config.Config) (rpc.Registry, error) {
	if len(cfg.Etcd) == 0 {
		return nil, errors.New("config: USERSVC_ETCD_ENDPOINTS (--etcd-endpoints) is required by this command")
	}
	reg, err := rpc.NewEtcdRegistry(cfg.Etcd, 5*time.Second)
	if err != nil {
		return nil, etcdError(cfg, err)
	}
	if _, err := reg.ListServices(); err != nil {
		_ = reg.Close()
		return nil, etcdError(cfg, err)
	}
	// Lookups outlive an etcd outage on the last known instances; for a
	// registration TTL after it, until every live instance has renewed,
	// an empty list is not believed.
	return rpc.NewStaleRegistry(reg, cfg.RegistryTTL), nil
}

// staleChecker is a registry that can answer from its cache
// (rpc.StaleRegistry).
type staleChecker interface {
	Check(ctx context.Context) error
}

// registryDegraded is the /readyz check that says "degraded: registry
// unreachable, serving from cache" during an etcd outage; none for a
// registry without a cache (the embedded mode's in-process one).
func registryDegraded(reg rpc.Registry) []health.Check {
	if s, ok := reg.(staleChecker); ok {
		return []health.Check{{Name: "registry", Fn: s.Check, Optional: true}}
	}
	return nil
}

// etcdError names the registry and its configured address in err.
func etcdError(cfg *config.Config, err error) error {
	return fmt.Errorf("etcd at %s (USERSVC_ETCD_ENDPOINTS) is unreachable: %w", strings.Join(cfg.Etcd, ","), err)
}

// instancesReady is a readiness check that the registry lists an instance
// of name; an unanswering registry is named as the cause, not the service.
func instancesReady(cfg *config.Config, reg rpc.Registry, name string) func(context.Context) error {
	return func(context.Context) error {
		err := rpc.HasInstances(reg, name)
		if err != nil && !errors.Is(err, rpc.ErrNoInstance) && len(cfg.Etcd) > 0 {
			return etcdError(cfg, err)
		}
		return err
	}
}

// RunService runs the user service (gRPC, registered) until ctx ends.
func RunService(ctx context.Context, cfg *config.Config, log *slog.Logger, reg rpc.Registry) error {
	core, err := NewCore(ctx, cfg, log, ModeService)
	if err != nil {
		return err
	}
	defer core.Close()
	tlsConf, err := grpcTLS(cfg, mtls.ServerConfig)
	if err != nil {
		return err
	}
	// Every dependency answers before the server registers (NewCore pinged
	// the database): an instance that registered and then failed to reach
	// RabbitMQ would be offered to callers for the moment it lived.
	pipeline, err := newEventPipeline(ctx, cfg, log, core)
	if err != nil {
		return err
	}
	defer pipeline.close()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: cfg.GRPCAddr, Registry: reg, TTL: cfg.RegistryTTL,
		GracePeriod: cfg.ShutdownTimeout, Logger: log, TLS: tlsConf, Healthy: databaseReachable(core)},
		rpc.NewHandler(core.Service, core.Keys.JWKS, rpc.ClientLimits{Limits: core.clientLimits, Trusted: cfg.TrustedProxies}))
	if err != nil {
		return err
	}
	log.Info("user service started", "address", srv.Address(), "registry.name", rpc.ServiceName)
	evctx, stopEvents := context.WithCancel(context.Background())
	evdone := make(chan error, 1)
	go func() { evdone <- pipeline.run(evctx) }()
	opsctx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	checks := append(core.checks, pipeline.checks...)
	for _, c := range registryDegraded(reg) {
		checks = append(checks, check{name: c.Name, fn: c.Fn, optional: true})
	}
	go func() {
		if err := serveOps(opsctx, cfg, log, checks, coreMetrics(core)); err != nil {
			log.Error("ops listener failed", "error", err)
		}
	}()
	var everr error
	evFinished := false
	select {
	case <-ctx.Done():
	case everr = <-evdone:
		evFinished = true
		log.Error("event pipeline stopped", "error", everr)
	}
	log.Info("user service stopping")
	err = srv.Stop()
	// Events stop after the server: calls still in flight may commit
	// changes whose events the relay should take along.
	stopEvents()
	if !evFinished {
		everr = <-evdone
	}
	return errors.Join(err, everr)
}

// databaseReachable is the check an instance's registration depends on:
// without its database it can only answer "unavailable", so it leaves the
// registry until the database answers again, and the error names it.
func databaseReachable(core *Core) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := core.Store.Ping(ctx); err != nil {
			return fmt.Errorf("database unreachable: %w", err)
		}
		return nil
	}
}

// RunAPI runs the HTTP API on ln, registered in reg, until ctx ends.
func RunAPI(ctx context.Context, cfg *config.Config, log *slog.Logger, reg rpc.Registry, ln net.Listener) error {
	tlsConf, err := grpcTLS(cfg, mtls.ClientConfig)
	if err != nil {
		return err
	}
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, Timeout: cfg.RPCTimeout, TLS: tlsConf})
	ready := instancesReady(cfg, reg, rpc.ServiceName)
	limits, byAction, closeLimits, err := rateLimits(cfg, log)
	if err != nil {
		return err
	}
	defer closeLimits()
	web, err := pages.New(pages.Config{PublicURL: cfg.PublicURL, IdleTimeout: cfg.AccessTTL, RPCTimeout: cfg.RPCTimeout,
		Limits: byAction, ClientIP: httpapi.ClientIP, RequireAdminMFA: cfg.RequireAdminMFA}, users, log)
	if err != nil {
		return fmt.Errorf("pages: %w", err)
	}
	h := httpapi.New(httpapi.Config{MaxBodyBytes: int64(cfg.MaxBodyBytes), RPCTimeout: cfg.RPCTimeout, Ready: ready,
		Degraded: registryDegraded(reg), RateLimits: limits, TrustedProxies: cfg.TrustedProxies, Mount: web.Mount, NotFound: web.NotFound}, users, log)
	addr := ln.Addr().String()
	deregister, err := rpc.RegisterHTTP(reg, APIServiceName, advertise(addr), cfg.RegistryTTL)
	if err != nil {
		return fmt.Errorf("register api: %w", err)
	}
	log.Info("api started", "address", addr, "registry.name", APIServiceName)
	return serve(ctx, cfg, log, ln, telemetry.HTTPServer("api", h, apiRoute), drain{leave: deregister, delay: cfg.DrainDelay})
}

// RunGateway runs the gateway on ln until ctx ends.
func RunGateway(ctx context.Context, cfg *config.Config, log *slog.Logger, reg rpc.Registry, ln net.Listener) error {
	return runGateway(ctx, cfg, log, reg, ln, nil)
}

// runGateway is RunGateway dialling the API instances with dial (nil: TCP).
func runGateway(ctx context.Context, cfg *config.Config, log *slog.Logger, reg rpc.Registry, ln net.Listener,
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) error {
	gw, err := gateway.New(ctx, gateway.Config{Routes: GatewayRoutes, MaxBodyBytes: int64(cfg.MaxBodyBytes),
		Logger: log, TrustedProxies: cfg.TrustedProxies, Dial: dial, Degraded: registryDegraded(reg)}, rpc.NewDiscovery(reg))
	if err != nil {
		return err
	}
	log.Info("gateway started", "address", ln.Addr().String())
	return serve(ctx, cfg, log, ln, telemetry.HTTPServer("gateway", gw, gatewayRoute), drain{delay: cfg.DrainDelay})
}

// grpcTLS builds one side's mutual-TLS configuration from the
// USERSVC_GRPC_TLS_* settings; nil when none is set (plaintext).
func grpcTLS(cfg *config.Config, side func(mtls.Files) (*tls.Config, error)) (*tls.Config, error) {
	f := mtls.Files{Cert: cfg.GRPCTLSCert, Key: cfg.GRPCTLSKey, CA: cfg.GRPCTLSCA}
	if !f.Enabled() {
		return nil, nil
	}
	c, err := side(f)
	if err != nil {
		return nil, fmt.Errorf("config: USERSVC_GRPC_TLS_CERT/_KEY/_CA: %w", err)
	}
	return c, nil
}

// drain says how serve ends: leave (if set) takes the process out of the
// registry first, and for delay after that the server goes on serving.
type drain struct {
	leave func()
	delay time.Duration
}

// serve runs an HTTP server on ln until ctx ends, then drains it.
//
// First it leaves the registry (d.leave) and goes on serving for d.delay,
// answering with "Connection: close" so each kept-alive connection ends
// after its next request. Without that pause a client that still sends
// here — a gateway that has not yet seen an API leave the registry, nginx
// on a kept-alive connection to a gateway — may send a request on a
// connection at the instant Shutdown closes it as idle; the request never
// reaches a handler, and the client cannot tell that from a server that
// died running it, so a POST gets a 502. Then Shutdown stops accepting and
// waits for in-flight requests for up to cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ln net.Listener, h http.Handler, d drain) error {
	var draining atomic.Bool
	srv := &http.Server{Handler: closeWhen(&draining, h), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if d.leave != nil {
			d.leave()
		}
		return err
	case <-ctx.Done():
	}
	if d.leave != nil {
		d.leave()
	}
	draining.Store(true)
	if d.delay > 0 {
		log.Info("stopping: serving on with Connection: close before the drain", "for", d.delay)
		time.Sleep(d.delay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// closeWhen asks the client to close the connection after each response
// once draining is set (net/http closes it after writing the response).
func closeWhen(draining *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// advertise turns a listen address into one others can dial: an unspecified
// host (0.0.0.0, ::) becomes this machine's first non-loopback address.
func advertise(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return addr
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range ifaddrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return net.JoinHostPort(n.IP.String(), port)
			}
		}
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// Listen opens a TCP listener, naming the setting on failure.
func Listen(addr, setting string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, setting, err)
	}
	return ln, nil
}
