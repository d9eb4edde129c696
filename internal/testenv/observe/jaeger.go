package observe

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// Jaeger is a running Jaeger v2 with in-memory storage
// (deploy/jaeger/config.yaml).
type Jaeger struct {
	// OTLPEndpoint is the OTLP/HTTP base URL the processes export to
	// (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// QueryURL is the base URL of the query API (/api/traces/…).
	QueryURL string
}

// StartJaeger starts USERSVC_TEST_JAEGER_BIN (scripts/opstools.sh jaeger)
// and waits until it is healthy.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin := binary(t, "USERSVC_TEST_JAEGER_BIN")
	a := freeAddrs(t, 6)
	host, port, _ := net.SplitHostPort(a[0])
	env := map[string]string{
		"JAEGER_METRICS_HOST": host, "JAEGER_METRICS_PORT": port,
		"JAEGER_QUERY_HTTP_ENDPOINT": a[1], "JAEGER_QUERY_GRPC_ENDPOINT": a[2],
		"JAEGER_HEALTH_ENDPOINT": a[3], "JAEGER_OTLP_GRPC_ENDPOINT": a[4], "JAEGER_OTLP_HTTP_ENDPOINT": a[5],
		// Jaeger's own SDK would trace its queries to localhost:4317.
		"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true",
	}
	cfg := filepath.Join(RepoRoot(t), "deploy", "jaeger", "config.yaml")
	s := start(t, "jaeger", bin, []string{"--config=file:" + cfg}, envs(env))
	s.waitOK(t, "http://"+a[3]+"/status", 60*time.Second)
	s.waitOK(t, "http://"+a[1]+"/api/services", 30*time.Second)
	return &Jaeger{OTLPEndpoint: "http://" + a[5], QueryURL: "http://" + a[1]}
}

// Span is a span as Jaeger's query API returns it, with its service.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	ProcessID string `json:"processID"`
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Service string `json:"-"`
}

// Parent is the span's CHILD_OF reference in its own trace, "" for a root.
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Tag is the value of the span's tag key (nil if absent).
func (s Span) Tag(key string) any {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return nil
}

// Trace fetches a trace by id; nil (and no error) while Jaeger has none.
func (j *Jaeger) Trace(traceID string) ([]Span, error) {
	resp, err := http.Get(j.QueryURL + "/api/traces/" + traceID)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger: GET /api/traces/%s: %s", traceID, resp.Status)
	}
	var body struct {
		Data []struct {
			Spans     []Span `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("jaeger: decode trace: %w", err)
	}
	var out []Span
	for _, d := range body.Data {
		for _, s := range d.Spans {
			s.Service = d.Processes[s.ProcessID].ServiceName
			out = append(out, s)
		}
	}
	return out, nil
}
