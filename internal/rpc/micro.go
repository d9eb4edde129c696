package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"go-micro.dev/v6/client"
	mgrpcclient "go-micro.dev/v6/client/grpc"
	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/server"
	mgrpcserver "go-micro.dev/v6/server/grpc"
	"google.golang.org/grpc"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
)

// ServiceName is the user service's name in the registry.
const ServiceName = "user.service"

var timeNow = time.Now

// Registry is the service registry, re-exported so other packages need not
// import go-micro to pass one around.
type Registry = registry.Registry

// NewMemoryRegistry is the in-process registry of the embedded mode.
func NewMemoryRegistry() Registry { return registry.NewMemoryRegistry() }

// ServerConfig describes one registered gRPC server.
type ServerConfig struct {
	Name     string        // registry name; default ServiceName
	Address  string        // listen address, e.g. "127.0.0.1:0"
	Registry Registry      // required
	TTL      time.Duration // registration lease; default 15s
	// GracePeriod bounds how long Stop waits for in-flight calls.
	GracePeriod time.Duration // default 10s
	Logger      *slog.Logger  // nil = slog.Default()
	// TLS, when set, serves gRPC over it only (mtls.ServerConfig: mutual
	// TLS 1.3); a plaintext client cannot complete a call.
	TLS *tls.Config
	// Healthy, when set, is checked every TTL/3 (and bounded by that):
	// while it fails the instance leaves the registry, and it registers
	// again once it passes (dependency-aware membership).
	Healthy func(context.Context) error
}

// Server is a started gRPC server registered in the registry.
type Server struct {
	srv       server.Server
	stopWatch func()
}

// StartUserServer serves h over gRPC and registers it. The registration is
// renewed every TTL/3 so a missed renewal or two does not drop a healthy
// instance, and expires after TTL when the process dies without deregistering.
func StartUserServer(cfg ServerConfig, h userv1.UserHandler) (*Server, error) {
	if cfg.Registry == nil {
		return nil, fmt.Errorf("rpc: server needs a registry")
	}
	if cfg.Name == "" {
		cfg.Name = ServiceName
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := append(serverTelemetry(),
		server.Name(cfg.Name),
		// go-micro's default node ID is one UUID per process; several
		// servers in one process (dev mode, tests) would overwrite each
		// other's registration.
		server.Id(uuid.NewString()),
		server.Address(cfg.Address),
		server.RegisterTTL(cfg.TTL),
		server.RegisterInterval(cfg.TTL/3),
		mgrpcserver.GracefulStopTimeout(cfg.GracePeriod),
		server.WrapHandler(logCalls(cfg.Logger)),
		mgrpcserver.Options(grpc.StreamInterceptor(grpcCodes), grpc.ForceServerCodec(protoCodec{})),
	)
	if cfg.TLS != nil {
		opts = append(opts, mgrpcserver.AuthTLS(cfg.TLS))
	}
	reg, gate := cfg.Registry, (*membership)(nil)
	if cfg.Healthy != nil {
		gate = newMembership(cfg.Registry, cfg.Logger)
		reg = gate
	}
	// Registry last: it re-initialises the server with the options so far.
	srv := mgrpcserver.NewServer(append(opts, server.Registry(reg))...)
	if err := userv1.RegisterUserHandler(srv, h); err != nil {
		return nil, fmt.Errorf("rpc: register handler: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("rpc: start server on %s: %w", cfg.Address, err)
	}
	// go-micro's Start only logs a failed registration; register once more
	// to learn the outcome, so the caller never reports a server started
	// that no client can find.
	if r, ok := srv.(interface{ Register() error }); ok {
		if err := r.Register(); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("rpc: register %s in the registry: %w", cfg.Name, err)
		}
	}
	s := &Server{srv: srv, stopWatch: func() {}}
	if gate != nil {
		s.stopWatch = gate.watch(cfg.Healthy, cfg.TTL/3)
	}
	return s, nil
}

// logCalls logs every call with its request ID: internal errors at error
// level with their cause (which the client never sees), the rest at debug.
func logCalls(log *slog.Logger) server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req server.Request, rsp interface{}) error {
			start := time.Now()
			err := next(ctx, req, rsp)
			// The request ID comes from ctx (telemetry.WithRequestID).
			attrs := []any{"rpc.method", req.Endpoint(), "event.duration", time.Since(start).Nanoseconds()}
			if cause, ok := err.(internalError); ok {
				log.ErrorContext(ctx, "rpc failed", append(attrs, "error", cause.cause.Error())...)
				return cause.public
			}
			log.DebugContext(ctx, "rpc", append(attrs, "rpc.code", codeOf(err))...)
			return err
		}
	}
}

// Address is the address the server listens on (the real port when the
// configured one was 0).
func (s *Server) Address() string { return s.srv.Options().Address }

// Stop deregisters first, so clients stop picking this instance, then
// drains in-flight calls up to the grace period.
func (s *Server) Stop() error {
	s.stopWatch()
	return s.srv.Stop()
}

// ClientConfig tunes calls to the user service.
type ClientConfig struct {
	Registry Registry      // required
	Name     string        // default ServiceName
	Timeout  time.Duration // per call, default 5s
	Retries  int           // on unavailable instances, default 2
	// TLS, when set, is the client side of mutual TLS (mtls.ClientConfig).
	TLS *tls.Config
}

// NewUserClient returns a registry-resolved, load-balanced (random over the
// cached, watched node list) client of the user service. A call that cannot
// reach an instance (connection refused from one that just died, before the
// registry noticed) is retried on another one; answers from the service are
// never retried, so a non-idempotent call is not repeated after it ran.
func NewUserClient(cfg ClientConfig) (userv1.UserService, client.Client) {
	if cfg.Name == "" {
		cfg.Name = ServiceName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 2
	}
	sel := newHealthSelector(cfg.Registry, 5*time.Second)
	opts := append(clientTelemetry(),
		client.Selector(sel),
		client.RequestTimeout(cfg.Timeout),
		client.DialTimeout(cfg.Timeout),
		client.Retries(cfg.Retries),
		client.Retry(retryUnreachable),
		client.Backoff(func(context.Context, client.Request, int) (time.Duration, error) { return 0, nil }),
	)
	if cfg.TLS != nil {
		opts = append(opts, mgrpcclient.AuthTLS(cfg.TLS))
	}
	c := mgrpcclient.NewClient(append(opts, client.Registry(cfg.Registry))...)
	return userv1.NewUserService(cfg.Name, c), c
}

// retryUnreachable retries a call on another node when the call cannot
// have reached a handler (no connection could be made), and, for calls that
// are safe to repeat, also when the connection was lost mid-call (the
// instance died while handling it). A write is not repeated after a lost
// connection because it may have run: a registration retried after it
// committed would answer "already exists" to its own success.
func retryUnreachable(_ context.Context, req client.Request, _ int, err error) (bool, error) {
	return dialFailed(err) || (unreachable(err) && safeToRepeat[req.Endpoint()]), nil
}

// safeToRepeat lists the endpoints whose repetition changes nothing a
// client could notice: reads, and Auth, whose repetition at worst leaves an
// unused session behind.
var safeToRepeat = map[string]bool{
	"User.Get": true, "User.Pagination": true, "User.Validate": true, "User.Keys": true, "User.Auth": true,
	// Ending every session twice ends them once.
	"User.ListSessions": true, "User.EndSessions": true,
}

// unreachable reports whether err is a transport failure to reach a node,
// as opposed to an answer from the service; such a node is skipped for a
// while.
func unreachable(err error) bool {
	me, ok := err.(*merrors.Error)
	if !ok {
		return false
	}
	if ours(me.Id) {
		return false
	}
	return me.Code == http.StatusServiceUnavailable || dialFailed(err)
}

// dialFailed reports whether err says no connection to the node was made.
func dialFailed(err error) bool {
	me, ok := err.(*merrors.Error)
	if !ok {
		return false
	}
	if ours(me.Id) {
		return false
	}
	msg := strings.ToLower(me.Detail)
	return strings.Contains(msg, "error while dialing") || strings.Contains(msg, "connection refused")
}

// ErrNoInstance is HasInstances' answer when the registry answered but
// lists no node of the service.
var ErrNoInstance = errors.New("no instance registered")

// HasInstances reports, for readiness checks, whether the registry lists at
// least one node of the service: nil, an error wrapping ErrNoInstance, or
// the registry's own failure.
func HasInstances(reg Registry, name string) error {
	svcs, err := reg.GetService(name)
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("registry: %s: %w", name, ErrNoInstance)
	}
	if err != nil {
		return fmt.Errorf("registry: %s: %w", name, err)
	}
	for _, s := range svcs {
		if len(s.Nodes) > 0 {
			return nil
		}
	}
	return fmt.Errorf("registry: %s: %w", name, ErrNoInstance)
}
