package app

import (
	"context"
	"log/slog"
	"net/netip"

	"golang.org/x/sync/errgroup"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/rpc"
)

// loopback is where dev mode's parts call each other.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// RunDev runs gateway, API and user service in one process on the embedded
// defaults: SQLite, keys and mail under the data dir, and an in-process
// registry. The request path is the distributed one (gateway → HTTP → API →
// gRPC → service), only the registry and database differ, so what works
// here works deployed.
func RunDev(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	reg := rpc.NewMemoryRegistry()
	core, err := NewCore(ctx, cfg, log, ModeDev)
	if err != nil {
		return err
	}
	defer core.Close()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, TTL: cfg.RegistryTTL,
		GracePeriod: cfg.ShutdownTimeout, Logger: log}, rpc.NewHandler(core.Service, core.Keys.JWKS,
		// The API beside it, on loopback, spends the budgets at its
		// own door; a direct caller on this machine is not told apart
		// from it (see docs/design.md).
		rpc.ClientLimits{Limits: core.clientLimits, Trusted: loopback}))
	if err != nil {
		return err
	}
	defer srv.Stop()
	apiLn, err := Listen("127.0.0.1:0", "internal API listener")
	if err != nil {
		return err
	}
	gwLn, err := Listen(cfg.HTTPAddr, "USERSVC_HTTP_ADDR")
	if err != nil {
		_ = apiLn.Close()
		return err
	}
	log.Info("usersvc dev mode", "url.full", "http://"+gwLn.Addr().String(), "data_dir", cfg.DataDir, "mail_dir", cfg.MailDir)
	// Shutdown runs from the outside in, as in a deployment: the gateway
	// drains first while the API behind it still answers, then the API
	// while the service still answers, then the events. Stopped all at once
	// (one context), the internal hops were cut under requests the gateway
	// had accepted, and they got 502.
	g, gctx := errgroup.WithContext(ctx)
	// One ops listener for the whole process: /metrics has every role's
	// metrics, since every role runs here.
	g.Go(func() error { return serveOps(gctx, cfg, log, core.checks, coreMetrics(core)) })
	// The internal API hears only the gateway beside it (peerGate: any
	// other local process's connection is closed), so believing the
	// X-Forwarded-For of loopback peers is believing the gateway's; the
	// gateway, as the edge, believes only the proxies
	// USERSVC_TRUSTED_PROXIES names.
	gate := newPeerGate()
	apiCfg := *cfg
	apiCfg.TrustedProxies = loopback
	// Its only client, the gateway, has stopped before the API is told to:
	// nobody is left to see it leave the registry, so no drain delay.
	apiCfg.DrainDelay = 0
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	evCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	stopOnFailure := context.AfterFunc(gctx, func() {
		if ctx.Err() == nil { // a part failed: stop the rest now
			stopAPI()
			stopEvents()
		}
	})
	defer stopOnFailure()
	g.Go(func() error { defer stopEvents(); return runEmbeddedEvents(evCtx, cfg, log, core) })
	g.Go(func() error { defer stopEvents(); return RunAPI(apiCtx, &apiCfg, log, reg, gate.listen(apiLn)) })
	g.Go(func() error { defer stopAPI(); return runGateway(gctx, cfg, log, reg, gwLn, gate.dial) })
	return g.Wait()
}
