package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/testenv/observe"
)

// TestMetricsAndAlerts runs the distributed deployment (gateway, API,
// service, worker on etcd, MariaDB, Redis, and RabbitMQ behind a TCP proxy
// the test can cut) scraped by a real Prometheus that evaluates the
// project's rules and sends alerts to a real Alertmanager. After traffic
// (sign-ups, good and bad sign-ins, a rate-limited account, a reset) the
// core series exist with sane values; then the broker is cut off, the
// outbox grows, and the outbox alert reaches a webhook through
// Alertmanager. The alert's 5-minute threshold is shortened to 3 seconds
// in the test's copy of the rules: the expression is the shipped one.
func TestMetricsAndAlerts(t *testing.T) {
	// The broker behind testenv's proxy, which the test cuts; the
	// machine's RabbitMQ itself stays up.
	amqpURL, broker := testenv.RabbitMQProxy(t)
	redisURL := testenv.RedisURL(t)
	dsn := testenv.MySQLDSN(t)
	hook := newWebhook(t)
	am := observe.StartAlertmanager(t, hook.URL)
	etcd := etcdtest.StartEtcd(t)
	c := cluster.Start(t, cluster.Options{Services: 1, APIs: 1, Workers: 1, MySQLDSN: dsn, Etcd: etcd,
		Env: map[string]string{
			"USERSVC_RABBITMQ_URL": amqpURL,
			"USERSVC_REDIS_URL":    redisURL,
			// Cleaned up through the broker itself: the proxy is cut.
			"USERSVC_NAMESPACE":          testNamespace(t, testenv.RabbitMQURL(t)),
			"USERSVC_RATE_LOGIN_ACCOUNT": "3/1m", // the sign-up's, two wrong: the fourth is refused
		}})
	var targets []observe.Target
	for _, p := range append(append(append([]*cluster.Proc{c.Gateway()}, c.APIs()...), c.Services()...), c.Workers()...) {
		targets = append(targets, observe.Target{Job: "usersvc-" + p.Role(), Addr: waitOpsAddr(t, p)})
	}
	root := observe.RepoRoot(t)
	prom := observe.StartPrometheus(t, observe.PrometheusOptions{Targets: targets, Alertmanager: am.Addr,
		RuleFiles: []string{filepath.Join(root, "deploy/prometheus/rules/recording.yml"), shortenedAlerts(t, root)}})

	cl := apiclient.New(t, c.GatewayURL())
	email := "metrics-" + testenv.RandomHex(4) + "@example.com"
	reg := register(cl, email, "Metrics")
	cl.Do("GET", "/user/"+reg.ID, reg.Access, nil).WantStatus(200)
	cl.Do("GET", "/user/"+reg.ID, reg.Access, nil).WantStatus(200)
	cl.Do("POST", "/user/token", "", map[string]any{"email": email, "password": "not the password"}).WantError(401, "unauthenticated")
	cl.Do("POST", "/user/token", "", map[string]any{"email": email, "password": "not the password"}).WantError(401, "unauthenticated")
	cl.Do("POST", "/user/token", "", map[string]any{"email": email, "password": "not the password"}).WantStatus(429)
	cl.Do("POST", "/user/password", "", map[string]any{"email": email}).WantStatus(202)
	testenv.WaitMail(t, c.MailDir(), email, resetSubject, 20*time.Second)

	// Every process is up, and each core series has a sane value.
	checks := []struct {
		expr string
		ok   func(float64) bool
	}{
		{`count(up{job=~"usersvc-.*"} == 1)`, eq(4)},
		{`sum(usersvc_http_server_request_duration_seconds_count{server="gateway",route="/user",status_class="2xx"})`, ge(4)},
		{`sum(usersvc_http_server_request_duration_seconds_count{server="api",route="/user/:id",method="GET",status_class="2xx"})`, ge(2)},
		{`sum(usersvc_http_server_request_duration_seconds_count{server="api",route="/user/token",status_class="4xx"})`, ge(2)},
		{`sum(usersvc_rpc_server_duration_seconds_count{method="User.Create",code="ok"})`, ge(1)},
		{`sum(usersvc_rpc_server_duration_seconds_count{method="User.Auth",code="unauthenticated"})`, ge(1)},
		{`sum(usersvc_rpc_client_duration_seconds_count{method="User.Auth"})`, ge(2)},
		{`sum(usersvc_logins_total{outcome="success"})`, ge(1)},
		{`sum(usersvc_logins_total{outcome="bad_credentials"})`, ge(1)},
		{`sum(usersvc_logins_total{outcome="limited"})`, ge(1)},
		{`sum(usersvc_ratelimit_rejections_total{limit="login-account"})`, ge(1)},
		{`sum(usersvc_password_hash_duration_seconds_count{operation="hash"})`, ge(1)}, // the sign-up's
		{`sum(usersvc_password_hash_duration_seconds_count{operation="verify"})`, ge(2)},
		{`sum(usersvc_gateway_upstream_requests_total{service="user.api",outcome="ok"})`, ge(4)},
		{`sum(usersvc_gateway_upstream_instances{service="user.api"})`, eq(1)},
		{`sum(usersvc_outbox_relay_published_events_total)`, ge(2)},
		{`sum(usersvc_amqp_publish_confirms_total{result="ack"})`, ge(2)},
		{`sum(usersvc_events_consumed_total{queue=~".*usersvc.mailer",outcome="ok"})`, ge(1)},
		{`sum(usersvc_mail_deliveries_total{outcome="sent"})`, ge(1)},
		{`sum(usersvc_outbox_pending_events)`, eq(0)},
		{`sum(usersvc_outbox_oldest_event_age_seconds)`, eq(0)},
		{`sum(usersvc_user_cache_hits_total) + sum(usersvc_user_cache_misses_total)`, ge(1)},
		{`min(usersvc_user_cache_backend_up)`, eq(1)},
		{`sum(usersvc_redis_pool_connections)`, ge(1)},
		{`count(go_sql_max_open_connections{job=~"usersvc-(service|worker)"})`, eq(2)},
		{`count(go_goroutines{job=~"usersvc-.*"})`, eq(4)},
		{`count(process_resident_memory_bytes{job=~"usersvc-.*"})`, eq(4)},
		{`count(usersvc:api_errors:ratio_rate5m)`, eq(1)},
	}
	for _, ch := range checks {
		v, err := waitValue(prom, ch.expr, ch.ok, 20*time.Second)
		if err != nil {
			t.Errorf("%s: %v", ch.expr, err)
		} else {
			t.Logf("%s = %g", ch.expr, v)
		}
	}

	checkDashboards(t, prom)

	// The broker goes away: writes still succeed, their events wait in the
	// outbox, and the outbox alert reaches the webhook.
	broker.Down()
	for i := range 3 {
		cl.Do("POST", "/user", "", map[string]any{"email": fmt.Sprintf("queued%d-%s", i, email),
			"password": userPassword, "name": "Queued"}).WantStatus(201)
	}
	if _, err := waitValue(prom, `sum(usersvc_outbox_pending_events)`, ge(3), 20*time.Second); err != nil {
		t.Errorf("outbox backlog: %v", err)
	}
	alert := hook.wait(t, "UsersvcOutboxStale", 60*time.Second)
	if alert.Labels["severity"] != "page" || alert.Annotations["runbook"] == "" || !strings.Contains(alert.Annotations["summary"], "outbox") {
		t.Errorf("alert %+v", alert)
	}
	broker.Up()
	if _, err := waitValue(prom, `sum(usersvc_outbox_pending_events)`, eq(0), 60*time.Second); err != nil {
		t.Errorf("after the broker came back: %v", err)
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func ge(min float64) func(float64) bool  { return func(v float64) bool { return v >= min } }

// waitValue polls a query until it has one sample accepted by ok.
func waitValue(p *observe.Prometheus, expr string, ok func(float64) bool, timeout time.Duration) (float64, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := p.Query(expr)
		if err != nil {
			return 0, err
		}
		if len(s) == 1 && ok(s[0].Value) {
			return s[0].Value, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("got %v after %s", s, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitOpsAddr waits for the process to log its ops listener's address.
func waitOpsAddr(t *testing.T, p *cluster.Proc) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if a := p.OpsAddr(); a != "" {
			return a
		}
	}
	t.Fatalf("%s logged no ops listener address", p.Name())
	return ""
}

// shortenedAlerts writes deploy/prometheus/rules/alerts.yml with the
// outbox alert's threshold cut from 300 to 3 seconds and its wait to 0, so
// that the test sees it fire in seconds; everything else is the shipped
// file.
func shortenedAlerts(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/rules/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string           `json:"name"`
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r["alert"] == "UsersvcOutboxStale" {
				expr := r["expr"].(string)
				if !strings.Contains(expr, "> 300") {
					t.Fatalf("UsersvcOutboxStale's expression changed: %s", expr)
				}
				r["expr"], r["for"] = strings.Replace(expr, "> 300", "> 3", 1), "0s"
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no UsersvcOutboxStale alert in alerts.yml")
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "alerts.yml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// webhook is an Alertmanager webhook receiver.
type webhook struct {
	URL    string
	mu     sync.Mutex
	alerts []hookAlert
}

type hookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []hookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.alerts = append(w.alerts, msg.Alerts...)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

// wait returns the first firing alert named name the webhook received.
func (w *webhook) wait(t *testing.T, name string, timeout time.Duration) hookAlert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		for _, a := range w.alerts {
			if a.Labels["alertname"] == name && a.Status == "firing" {
				w.mu.Unlock()
				return a
			}
		}
		got := fmt.Sprint(w.alerts)
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no firing %s at the webhook within %s; received %s", name, timeout, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
