package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/usersvc/usersvc/internal/telemetry"
)

// Tracing is the result of SetupTracing.
type Tracing struct {
	// ServiceName is the resource's service.name: OTEL_SERVICE_NAME when
	// set, else the role's default. Log lines carry the same name.
	ServiceName string
	// Exporting reports whether spans are exported (an OTLP endpoint is
	// configured).
	Exporting bool
	shutdown  func(context.Context) error
}

// Shutdown flushes the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// SetupTracing installs the global propagator and, when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is
// not true, and OTEL_TRACES_EXPORTER is not "none"), a tracer provider
// that batches spans to that OTLP endpoint. The SDK itself reads the rest of
// the standard variables: OTEL_EXPORTER_OTLP_PROTOCOL (grpc or
// http/protobuf, the default), OTEL_TRACES_SAMPLER[_ARG] (default
// parentbased_always_on), OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*.
// defaultName is the service.name when OTEL_SERVICE_NAME is unset.
func SetupTracing(ctx context.Context, defaultName string, log *slog.Logger) (*Tracing, error) {
	telemetry.UsePropagation()
	t := &Tracing{ServiceName: telemetry.ServiceName(defaultName)}
	if !exportConfigured(os.Getenv) {
		return t, nil
	}
	exp, err := newExporter(ctx, os.Getenv)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(defaultName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the default
		resource.WithTelemetrySDK(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("opentelemetry: " + err.Error())
		}))
	}
	t.Exporting, t.shutdown = true, tp.Shutdown
	return t, nil
}

// exportConfigured reports whether the OTEL_* variables ask for an export.
func exportConfigured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) {
	case "", "otlp":
	default:
		return false // "none", or an exporter this binary does not carry
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newExporter picks the OTLP transport the protocol variables name; the
// exporters read their endpoint, headers, timeout and TLS from the
// environment themselves.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	return exp, nil
}
