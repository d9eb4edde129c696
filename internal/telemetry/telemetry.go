// Package telemetry is what every process shares to be observable: the
// trace-context propagation, the Prometheus registry with the platform's metrics, the ECS
// log handler that stamps trace and request ids on every line, and the
// HTTP middleware that ties the three together for one request.
//
// It carries no exporter: the OTLP exporters (and the gRPC they bring) are
// set up by the wiring (app.SetupTracing), so the edge packages that use
// these helpers (httpapi, pages, gateway) do not link them.
package telemetry

import (
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// UsePropagation installs the W3C trace-context and baggage propagators,
// so an incoming traceparent reaches the logs and the next hop whether or
// not spans are exported (the exporter is set up by the wiring,
// app.SetupTracing, so that edge packages do not link it).
func UsePropagation() {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

// ServiceName is OTEL_SERVICE_NAME when set, else def: the service.name of
// the process's spans and log lines alike.
func ServiceName(def string) string {
	if v := strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME")); v != "" {
		return v
	}
	return def
}
