package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// discard is an exporter that drops what the batch processor hands it, so
// the benchmark measures creating, recording and batching spans, not a
// network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkHTTPServer is the cost of one instrumented request (server
// span, traceresponse, duration histogram) with tracing off, and with the
// SDK sampling every request or 1 in 100.
func BenchmarkHTTPServer(b *testing.B) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", noop.NewTracerProvider()},
		{"ratio=1.0", sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))))},
		{"ratio=0.01", sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			otel.SetTracerProvider(tc.tp)
			h := HTTPServer("bench", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetRoute(r.Context(), r.Method, "/user/:id")
				w.WriteHeader(http.StatusOK)
			}), func(*http.Request) string { return "/user" })
			req := httptest.NewRequest("GET", "/user/123", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
