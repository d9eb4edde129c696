package rpc

import (
	"context"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/server"
	microotel "go-micro.dev/v6/wrapper/trace/opentelemetry"

	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// serverTelemetry are the server's outermost wrappers: go-micro's
// OpenTelemetry wrapper opens the server span, a child of the caller's
// span whose context arrives in the call's metadata (traceparent), then
// the call is timed for usersvc_rpc_server_duration_seconds and its
// request ID put where the log handler finds it.
func serverTelemetry() []server.Option {
	return []server.Option{
		server.WrapHandler(microotel.NewHandlerWrapper()),
		server.WrapHandler(func(next server.HandlerFunc) server.HandlerFunc {
			return func(ctx context.Context, req server.Request, rsp interface{}) error {
				start := time.Now()
				ctx = telemetry.WithRequestID(ctx, RequestID(ctx))
				err := next(ctx, req, rsp)
				telemetry.RPCServerDuration.WithLabelValues(req.Endpoint(), metricCode(err)).Observe(time.Since(start).Seconds())
				return err
			}
		}),
	}
}

// clientTelemetry wraps every attempt of a call (after the node is picked,
// so a retry is a span of its own): a client span whose context travels in
// the call's metadata, and usersvc_rpc_client_duration_seconds.
func clientTelemetry() []client.Option {
	return []client.Option{
		client.WrapCall(microotel.NewCallWrapper()),
		client.WrapCall(func(next client.CallFunc) client.CallFunc {
			return func(ctx context.Context, node *registry.Node, req client.Request, rsp interface{}, opts client.CallOptions) error {
				start := time.Now()
				err := next(ctx, node, req, rsp, opts)
				telemetry.RPCClientDuration.WithLabelValues(req.Endpoint(), metricCode(err)).Observe(time.Since(start).Seconds())
				return err
			}
		}),
	}
}

// metricCode bounds a call's result to a small set: the domain codes, and
// for failures that are not the service's answer "unavailable" or
// "transport_error".
func metricCode(err error) string {
	if err == nil {
		return "ok"
	}
	if ie, ok := err.(internalError); ok {
		err = ie.public
	}
	me, ok := err.(*merrors.Error)
	if !ok {
		return string(user.CodeInternal)
	}
	if ours(me.Id) {
		return me.Id
	}
	if dialFailed(err) || me.Code == 503 {
		return "unavailable"
	}
	if me.Code == 408 {
		return "timeout"
	}
	return "transport_error"
}
