package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestJSONLoggerWritesECSFieldsAndTheContextsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := NewJSONLogger(&buf, slog.LevelInfo, "user.api")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = WithRequestID(ctx, "req-1")
	log.ErrorContext(ctx, "call failed", "error", errors.New("boom"))
	log.Info("no request")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"log.level": "error", "message": "call failed", "service.name": "user.api",
		"trace.id": tid.String(), "span.id": sid.String(), "transaction.id": "req-1", "error.message": "boom"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, first[k], v, lines[0])
		}
	}
	if _, ok := first["@timestamp"]; !ok {
		t.Errorf("no @timestamp: %s", lines[0])
	}
	for _, k := range []string{"trace.id", "span.id", "transaction.id"} {
		if _, ok := second[k]; ok {
			t.Errorf("a line outside a request has %s: %s", k, lines[1])
		}
	}
}

func TestHTTPServerAnswersTraceresponseForTheIncomingTrace(t *testing.T) {
	UsePropagation()
	h := HTTPServer("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), r.Method, "/user/:id")
		w.WriteHeader(http.StatusNoContent)
	}), func(*http.Request) string { return "unmatched" })
	req := httptest.NewRequest("GET", "/user/42", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get(TraceResponseHeader); !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceresponse %q", got)
	}
	if OTelRoute("/user/:id/*rest") != "/user/{id}/{rest}" {
		t.Errorf("OTelRoute: %s", OTelRoute("/user/:id/*rest"))
	}
}
