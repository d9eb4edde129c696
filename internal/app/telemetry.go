package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// WorkerServiceName is the worker's service.name.
const WorkerServiceName = "user.worker"

// ServiceName is the default service.name (traces and logs) of a command's
// process; OTEL_SERVICE_NAME overrides it.
func ServiceName(cmd string) string {
	switch cmd {
	case "gateway":
		return "gateway"
	case "api":
		return APIServiceName
	case "service":
		return rpc.ServiceName
	case "worker":
		return WorkerServiceName
	case "dev":
		return "usersvc"
	}
	return "usersvc-" + strings.ReplaceAll(cmd, " ", "-")
}

// gatewayRoute is the route label of a gateway request: the prefix of the
// route it matches, a probe's path, or "unmatched" — never the raw path.
func gatewayRoute(r *http.Request) string {
	switch r.URL.Path {
	case "/healthz", "/readyz":
		return r.URL.Path
	}
	for _, rt := range GatewayRoutes {
		if strings.HasPrefix(r.URL.Path, strings.TrimSuffix(rt.Prefix, "/")) {
			return rt.Prefix
		}
	}
	return "unmatched"
}

// apiRoute is the API's route label until gin has matched the route (the
// access-log middleware refines it with telemetry.SetRoute); requests gin
// rejects before that keep "unmatched".
func apiRoute(*http.Request) string { return "unmatched" }

// ServeMetrics serves /healthz and /metrics on USERSVC_OPS_ADDR for the
// roles whose readiness is on their main listener (api, gateway), until
// ctx ends.
func ServeMetrics(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return serveOps(ctx, cfg, log, nil, nil)
}

// storeMetrics are a database's pool statistics (go_sql_* by db_name) and
// the outbox's backlog: its size and the age of its oldest event, which
// grow while the broker is down.
func storeMetrics(st *sqlstore.Store, outbox bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewDBStatsCollector(st.DB(), "usersvc"))
	if !outbox {
		return reg
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "usersvc_outbox_pending_events",
			Help: "Events committed but not yet confirmed by the broker."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := st.OutboxLen(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "usersvc_outbox_oldest_event_age_seconds",
			Help: "Age of the oldest event waiting in the outbox; 0 when it is empty."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			oldest, err := st.OutboxOldest(ctx)
			if err != nil {
				return -1
			}
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}))
	return reg
}

// redisPools are the Redis clients of this process; a process has one or
// two (the service's cache, the API's limits; both in dev mode).
// It is registered with the process's metrics (serveOps).
var redisPools = &redisPoolCollector{}

// registerRedisPool adds rc's connection pool to usersvc_redis_pool_*.
func registerRedisPool(rc *redis.Client) {
	redisPools.mu.Lock()
	defer redisPools.mu.Unlock()
	redisPools.clients = append(redisPools.clients, rc)
}

// redisPoolCollector sums the pool statistics of the process's clients.
type redisPoolCollector struct {
	mu      sync.Mutex
	clients []*redis.Client
}

var (
	redisConnsDesc = prometheus.NewDesc("usersvc_redis_pool_connections",
		"Connections in the Redis pools, by state (idle, in_use).", []string{"state"}, nil)
	redisHitsDesc = prometheus.NewDesc("usersvc_redis_pool_hits_total",
		"Times a free connection was found in the pool.", nil, nil)
	redisMissesDesc = prometheus.NewDesc("usersvc_redis_pool_misses_total",
		"Times no free connection was in the pool and one was dialled.", nil, nil)
	redisTimeoutsDesc = prometheus.NewDesc("usersvc_redis_pool_timeouts_total",
		"Times a command waited for a connection longer than the pool timeout.", nil, nil)
)

func (c *redisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- redisConnsDesc
	ch <- redisHitsDesc
	ch <- redisMissesDesc
	ch <- redisTimeoutsDesc
}

func (c *redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.clients) == 0 {
		return // no Redis configured: no series rather than zeros
	}
	var total, idle, hits, misses, timeouts uint32
	for _, rc := range c.clients {
		s := rc.PoolStats()
		total, idle, hits, misses, timeouts = total+s.TotalConns, idle+s.IdleConns, hits+s.Hits, misses+s.Misses, timeouts+s.Timeouts
	}
	ch <- prometheus.MustNewConstMetric(redisConnsDesc, prometheus.GaugeValue, float64(idle), "idle")
	ch <- prometheus.MustNewConstMetric(redisConnsDesc, prometheus.GaugeValue, float64(total-idle), "in_use")
	ch <- prometheus.MustNewConstMetric(redisHitsDesc, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(redisMissesDesc, prometheus.CounterValue, float64(misses))
	ch <- prometheus.MustNewConstMetric(redisTimeoutsDesc, prometheus.CounterValue, float64(timeouts))
}

// countRejections counts l's refusals in usersvc_ratelimit_rejections_total
// under the limit's name (login-ip, login-account, …); the series exists
// from the start, at 0.
func countRejections(name string, l ratelimit.Limiter) ratelimit.Limiter {
	c := telemetry.RateLimitRejections.WithLabelValues(name)
	return countingLimiter{Limiter: l, rejected: c}
}

type countingLimiter struct {
	ratelimit.Limiter
	rejected prometheus.Counter
}

func (l countingLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	ok, retry, err := l.Limiter.Allow(ctx, key)
	if err == nil && !ok {
		l.rejected.Inc()
	}
	return ok, retry, err
}

// timedHasher times every argon2id computation in
// usersvc_password_hash_duration_seconds (the password package itself
// stays free of the metrics library).
type timedHasher struct{ inner user.PasswordHasher }

func (h timedHasher) Hash(ctx context.Context, pw string) (string, error) {
	defer observeSince("hash", time.Now())
	return h.inner.Hash(ctx, pw)
}

func (h timedHasher) Verify(ctx context.Context, pw, encoded string) (bool, bool, error) {
	defer observeSince("verify", time.Now())
	return h.inner.Verify(ctx, pw, encoded)
}

// Unmatchable runs no hash, so there is nothing to time.
func (h timedHasher) Unmatchable() (string, error) { return h.inner.Unmatchable() }

func observeSince(op string, start time.Time) {
	telemetry.PasswordHashDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
