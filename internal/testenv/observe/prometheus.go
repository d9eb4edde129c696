package observe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Target is one scraped process.
type Target struct {
	Job, Addr string // job name (usersvc-api, …) and host:port of /metrics
}

// Prometheus is a running Prometheus.
type Prometheus struct {
	URL string
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	Targets []Target
	// RuleFiles are loaded besides nothing else; absolute paths.
	RuleFiles []string
	// Alertmanager is the host:port alerts go to ("" = none).
	Alertmanager string
}

// StartPrometheus starts USERSVC_TEST_PROMETHEUS_BIN scraping the targets
// every second and evaluating the rules every second, and waits until it
// is ready.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin := binary(t, "USERSVC_TEST_PROMETHEUS_BIN")
	dir := t.TempDir()
	jobs := map[string][]string{}
	var order []string
	for _, tg := range o.Targets {
		if _, ok := jobs[tg.Job]; !ok {
			order = append(order, tg.Job)
		}
		jobs[tg.Job] = append(jobs[tg.Job], tg.Addr)
	}
	var scrapes []map[string]any
	for _, j := range order {
		scrapes = append(scrapes, map[string]any{"job_name": j,
			"static_configs": []map[string]any{{"targets": jobs[j]}}})
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files":     o.RuleFiles,
		"scrape_configs": scrapes,
	}
	if o.Alertmanager != "" {
		cfg["alerting"] = map[string]any{"alertmanagers": []map[string]any{
			{"static_configs": []map[string]any{{"targets": []string{o.Alertmanager}}}}}}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddrs(t, 1)[0]
	s := start(t, "prometheus", bin, []string{"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--rules.alert.resend-delay=1s", "--log.level=warn"}, nil)
	s.waitOK(t, "http://"+addr+"/-/ready", 60*time.Second)
	return &Prometheus{URL: "http://" + addr}
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query; an error is a failed query (bad expression,
// server error), not an empty result.
func (p *Prometheus) Query(expr string) ([]Sample, error) {
	resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus: decode %q: %w", expr, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus: query %q: %s", expr, body.Error)
	}
	var out []Sample
	for _, raw := range body.Data.Result {
		var r struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if body.Data.ResultType != "vector" {
			continue // a scalar or matrix: valid, but not a sample list
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		var v float64
		if s, ok := r.Value[1].(string); ok {
			_, _ = fmt.Sscan(strings.TrimSpace(s), &v)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	Addr string // host:port, for Prometheus
}

// StartAlertmanager starts USERSVC_TEST_ALERTMANAGER_BIN (no cluster) with
// one route to webhookURL that sends at once and waits until it is ready.
func StartAlertmanager(t testing.TB, webhookURL string) *Alertmanager {
	t.Helper()
	bin := binary(t, "USERSVC_TEST_ALERTMANAGER_BIN")
	dir := t.TempDir()
	cfg := map[string]any{
		"route": map[string]any{"receiver": "webhook", "group_by": []string{"alertname"},
			"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
		"receivers": []map[string]any{{"name": "webhook",
			"webhook_configs": []map[string]any{{"url": webhookURL, "send_resolved": true}}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddrs(t, 1)[0]
	s := start(t, "alertmanager", bin, []string{"--config.file=" + path, "--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}, nil)
	s.waitOK(t, "http://"+addr+"/-/ready", 60*time.Second)
	return &Alertmanager{Addr: addr}
}
