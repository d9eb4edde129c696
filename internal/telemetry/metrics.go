package telemetry

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The platform's metrics. They are process-wide, like the process itself:
// the dev mode's one process serves gateway, API, service and worker and
// so exports all of them, a distributed role only those it moves. Every
// label takes a bounded set of values: route templates (never raw paths),
// RPC method names, status classes and codes, fixed outcome words — never
// an id, an email or a token.
var (
	// HTTPServerDuration: server = gateway|api, route = a route template
	// (gin's full path, or the gateway's route prefix; "unmatched" for
	// unknown routes), status_class = 2xx..5xx.
	HTTPServerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "usersvc_http_server_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by server, route template, method and status class.",
		Buckets: latencyBuckets,
	}, []string{"server", "route", "method", "status_class"})

	RPCServerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "usersvc_rpc_server_duration_seconds",
		Help:    "Time the user service took to handle an RPC, by method and result code.",
		Buckets: latencyBuckets,
	}, []string{"method", "code"})

	RPCClientDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "usersvc_rpc_client_duration_seconds",
		Help:    "Time an RPC to the user service took as seen by its caller (one attempt), by method and result code.",
		Buckets: latencyBuckets,
	}, []string{"method", "code"})

	GatewayUpstreamRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_gateway_upstream_requests_total",
		Help: "Attempts the gateway made to reach an instance, by service and outcome (ok, unreachable, timeout, error).",
	}, []string{"service", "outcome"})
	GatewayRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_gateway_upstream_retries_total",
		Help: "Requests the gateway moved to another instance after one could not be reached.",
	}, []string{"service"})
	RegistryStale = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "usersvc_registry_serving_from_cache",
		Help: "1 while the registry is unreachable and instance lookups are answered from the last known lists, else 0.",
	})
	GatewayInstances = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "usersvc_gateway_upstream_instances",
		Help: "Instances of each service the gateway currently routes to.",
	}, []string{"service"})

	RateLimitRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_ratelimit_rejections_total",
		Help: "Requests refused with 429, by limit (login-ip, login-account, register-ip, reset-ip, reset-account).",
	}, []string{"limit"})
	Logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_logins_total",
		Help: "Password sign-ins by outcome: success, bad_credentials, disabled, limited, error.",
	}, []string{"outcome"})

	PasswordHashDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "usersvc_password_hash_duration_seconds",
		Help:    "Time one argon2id computation took, by operation (hash, verify).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"operation"})

	DBTxRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_db_transaction_retries_total",
		Help: "Transactions that lost a lock conflict, by conflict (deadlock, lock_wait_timeout, serialization, busy) and outcome (retried, gave_up).",
	}, []string{"reason", "outcome"})

	RelayPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "usersvc_outbox_relay_published_events_total",
		Help: "Outbox events the relay handed to the broker and the broker confirmed.",
	})
	RelayFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "usersvc_outbox_relay_failures_total",
		Help: "Relay batches the broker did not take (down, nack, timeout); their events stay in the outbox.",
	})
	BrokerConfirms = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_amqp_publish_confirms_total",
		Help: "Publisher confirms received from RabbitMQ, by result (ack, nack).",
	}, []string{"result"})

	ConsumerDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_events_consumed_total",
		Help: "Event deliveries handled by a consumer, by queue and outcome (ok, retry, dead_lettered).",
	}, []string{"queue", "outcome"})

	MailDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_mail_deliveries_total",
		Help: "Password-reset mails by outcome (sent, failed).",
	}, []string{"outcome"})
	SearchIndexWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usersvc_search_index_writes_total",
		Help: "Writes of the search indexer by outcome (ok, failed).",
	}, []string{"outcome"})
)

// latencyBuckets span a cached read (sub-millisecond) to a request near its
// timeout (5s).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewRegistry returns a registry of the metrics above, the Go runtime and
// process collectors, and a process's own collectors (extra). Nothing
// registers itself: the wiring makes one per process, for its /metrics.
func NewRegistry(extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		HTTPServerDuration, RPCServerDuration, RPCClientDuration,
		GatewayUpstreamRequests, GatewayRetries, GatewayInstances, RegistryStale,
		RateLimitRejections, Logins, PasswordHashDuration,
		DBTxRetries, RelayPublished, RelayFailures, BrokerConfirms, ConsumerDeliveries,
		MailDeliveries, SearchIndexWrites)
	reg.MustRegister(extra...)
	// Exported at 0 from the start, so rates and ratios over them exist
	// before the first event (and a dashboard panel has a series to draw).
	for _, o := range []string{LoginSuccess, LoginBadCredentials, LoginDisabled, LoginLimited, LoginInvalid, LoginError} {
		Logins.WithLabelValues(o)
	}
	for _, reason := range []string{TxDeadlock, TxLockWaitTimeout, TxSerialization, TxBusy} {
		for _, outcome := range []string{TxRetried, TxGaveUp} {
			DBTxRetries.WithLabelValues(reason, outcome)
		}
	}
	return reg
}

// The outcomes of usersvc_logins_total; NewRegistry exports each at 0.
const (
	LoginSuccess        = "success"
	LoginBadCredentials = "bad_credentials"
	LoginDisabled       = "disabled"
	LoginLimited        = "limited"
	LoginInvalid        = "invalid"
	LoginError          = "error"
)

// The conflicts (reason) and outcomes of
// usersvc_db_transaction_retries_total; NewRegistry exports each pair at 0.
const (
	TxDeadlock        = "deadlock"
	TxLockWaitTimeout = "lock_wait_timeout"
	TxSerialization   = "serialization"
	TxBusy            = "busy"
	TxRetried         = "retried"
	TxGaveUp          = "gave_up"
)

// MetricsHandler serves the registries (NewRegistry's, and a process's
// own: its database pool, its outbox) in the text format.
func MetricsHandler(regs ...prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers(regs), promhttp.HandlerOpts{})
}

// StatusClass is "2xx".."5xx" for an HTTP status.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}
