package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// TraceResponseHeader returns the trace to the client (W3C Trace Context
// Level 2), so a bug report can quote the trace id.
const TraceResponseHeader = "traceresponse"

type routeKey struct{}

// routeHolder is filled in by the router once it has matched, for the
// metric label and the span name.
type routeHolder struct{ route string }

// SetRoute records the matched route template of the request ctx belongs
// to (e.g. "/user/:id") and names its server span after it. A router calls
// it once it has matched; without it the route label is the one
// HTTPServer's route function gave.
func SetRoute(ctx context.Context, method, route string) {
	if h, ok := ctx.Value(routeKey{}).(*routeHolder); ok {
		h.route = route
	}
	if route == "" {
		return
	}
	tmpl := OTelRoute(route)
	span := trace.SpanFromContext(ctx)
	span.SetName(method + " " + tmpl)
	span.SetAttributes(attribute.String("http.route", tmpl))
}

// OTelRoute turns gin's "/user/:id" into the semantic conventions'
// "/user/{id}".
func OTelRoute(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if len(p) > 1 && (p[0] == ':' || p[0] == '*') {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// HTTPServer instruments one HTTP server (server = "gateway" or "api"):
// a server span per request whose parent is the incoming traceparent
// (otelhttp), the traceresponse header on every answer, and the request
// duration histogram by route template, method and status class. route
// gives the route label before routing (the gateway's route prefix); a
// router may refine it with SetRoute. Probes (/healthz, /readyz) are
// measured but not traced, so they do not flood the trace store.
func HTTPServer(server string, h http.Handler, route func(*http.Request) string) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder := &routeHolder{route: route(r)}
		rw := &statusWriter{ResponseWriter: w, ctx: r.Context()}
		h.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), routeKey{}, holder)))
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		HTTPServerDuration.WithLabelValues(server, holder.route, r.Method, StatusClass(rw.status)).
			Observe(time.Since(start).Seconds())
	})
	return otelhttp.NewHandler(inner, server,
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + route(r) }))
}

// statusWriter records the status and sets traceresponse just before the
// header goes out, replacing one an upstream sent (the gateway's answer
// names the gateway's span).
type statusWriter struct {
	http.ResponseWriter
	ctx    context.Context
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if sc := trace.SpanContextFromContext(w.ctx); sc.IsValid() {
			w.Header().Set(TraceResponseHeader, fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags()))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines (the
// gateway's reverse proxy flushes through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush is here for callers that assert http.Flusher directly (gin does).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// HTTPClient returns base instrumented as an HTTP client: a client span
// per round trip, and the traceparent of that span sent along.
func HTTPClient(base http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(base)
}
