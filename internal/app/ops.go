package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/health"
	"github.com/usersvc/usersvc/internal/telemetry"
)

// check is one named readiness dependency. An optional one (Redis: the
// service serves from the database without it) shows in the detail but
// does not make the process unready.
type check struct {
	name     string
	fn       func(context.Context) error
	optional bool
}

// readiness runs every check and reports each one's state; ready only when
// every required one passes.
func readiness(ctx context.Context, checks []check) (health.Report, bool) {
	hc := make([]health.Check, len(checks))
	for i, c := range checks {
		hc[i] = health.Check{Name: c.name, Fn: c.fn, Optional: c.optional}
	}
	return health.Ready(ctx, 2*time.Second, hc)
}

// serveOps serves /healthz and /metrics, and /readyz from checks for the
// roles without an HTTP API (service, worker; checks nil: no /readyz).
func serveOps(ctx context.Context, cfg *config.Config, log *slog.Logger, checks []check, metrics prometheus.Gatherer) error {
	ln, err := Listen(cfg.OpsAddr, "USERSVC_OPS_ADDR")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, health.Live)
	})
	if checks != nil {
		// Only where readiness is decided here: the API's and the gateway's
		// is on their main listener, and an ops /readyz that always said
		// "ready" beside it would be a second answer that lies.
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			rep, ok := readiness(r.Context(), checks)
			code := http.StatusOK
			if !ok {
				code = http.StatusServiceUnavailable
			}
			writeJSON(w, code, rep)
		})
	}
	// The shared metrics and the process's Redis pools, plus the
	// process's own (its database pool, its outbox).
	regs := []prometheus.Gatherer{telemetry.NewRegistry(redisPools)}
	if metrics != nil {
		regs = append(regs, metrics)
	}
	mux.Handle("GET /metrics", telemetry.MetricsHandler(regs...))
	log.Info("ops listener started", "address", ln.Addr().String())
	return serve(ctx, cfg, log, ln, mux, drain{})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// coreMetrics are a service process's own collectors, served beside the
// shared registry (telemetry.NewRegistry): the user cache's hits and misses (hit ratio =
// hits / (hits + misses)), the database pool, and the outbox backlog.
func coreMetrics(core *Core) *prometheus.Registry {
	reg := storeMetrics(core.Store, true)
	if cs, ok := core.Service.Store().(interface{ Stats() (uint64, uint64) }); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "usersvc_user_cache_hits_total",
				Help: "User reads answered from the cache."}, func() float64 { h, _ := cs.Stats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "usersvc_user_cache_misses_total",
				Help: "User reads that went to the database."}, func() float64 { _, m := cs.Stats(); return float64(m) }))
	}
	if h, ok := core.Service.Store().(interface{ Healthy() error }); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "usersvc_user_cache_backend_up",
			Help: "1 while the user cache's backend (Redis) answers, 0 while reads bypass it to the database."},
			func() float64 {
				if h.Healthy() != nil {
					return 0
				}
				return 1
			}))
	}
	return reg
}
