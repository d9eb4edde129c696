package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/telemetry"
)

const (
	// requestIDHeader is read from the request, echoed on the response and
	// forwarded to the user service, so one ID ties the client's report, the
	// gateway's log and the service's log together.
	requestIDHeader = reqmeta.RequestIDHeader

	ctxKeyRequestID = "httpapi.request_id"
)

// requestID adopts the client's X-Request-ID when it is sane (1..128
// printable ASCII characters, so it cannot forge log lines or bloat them)
// and otherwise generates one.
func (s *server) requestID(c *gin.Context) {
	id := reqmeta.RequestID(c.GetHeader(requestIDHeader))
	c.Set(ctxKeyRequestID, id)
	// In the request's context too, so every line logged with it carries
	// the ID (transaction.id), and the next hops get it.
	c.Request = c.Request.WithContext(telemetry.WithRequestID(c.Request.Context(), id))
	c.Header(requestIDHeader, id)
	c.Next()
}

// requestIDOf returns the ID the requestID middleware chose.
func requestIDOf(c *gin.Context) string { return c.GetString(ctxKeyRequestID) }

// accessLog writes one structured line per request in ECS fields. It logs
// the route pattern (gin's FullPath, "" for unknown routes) and the path
// cut to maxLoggedPath, so client-chosen paths cannot bloat the log. It
// also hands the route to the server span and the request metric.
func (s *server) accessLog(c *gin.Context) {
	start := time.Now()
	telemetry.SetRoute(c.Request.Context(), c.Request.Method, c.FullPath())
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelWarn // the cause is logged at error level where it happened
	}
	path := c.Request.URL.Path
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath]
	}
	s.log.LogAttrs(c.Request.Context(), level, "http request",
		slog.String("http.request.method", c.Request.Method),
		slog.String("http.route", c.FullPath()),
		slog.String("url.path", path),
		slog.Int("http.response.status_code", status),
		slog.Int64("event.duration", time.Since(start).Nanoseconds()),
		slog.Int("http.response.body.bytes", max(c.Writer.Size(), 0)),
		slog.String("client.ip", c.ClientIP()),
	)
}

// maxLoggedPath bounds url.path in the access log.
const maxLoggedPath = 256

// recovery turns a panic in a handler into a logged error and a JSON 500.
// The stack goes to the log only; the client learns nothing about the code.
// http.ErrAbortHandler is re-raised: it is net/http's way to abort a
// response deliberately.
func (s *server) recovery(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			panic(p)
		}
		s.log.ErrorContext(c.Request.Context(), "panic in HTTP handler",
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()),
			"http.route", c.FullPath())
		if c.Writer.Written() {
			c.Abort() // too late for a clean answer; the client sees a cut response
			return
		}
		writeError(c, http.StatusInternalServerError, codeInternal, "internal error", nil)
	}()
	c.Next()
}

// limitBody caps every request body at Config.MaxBodyBytes before any
// handler reads it; bindJSON turns the reader's error into a 413.
func (s *server) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
	}
	c.Next()
}

// rpcContext is the context of one user-service call: bounded by
// Config.RPCTimeout, cancelled with the client's request, and carrying the
// request ID and the caller's bearer token for the call's metadata.
func (s *server) rpcContext(c *gin.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RPCTimeout)
	return reqmeta.With(ctx, reqmeta.Call{RequestID: requestIDOf(c), Bearer: bearerOf(c)}), cancel
}

// noStore marks every answer Cache-Control: no-store: most carry personal
// data (a user, a list of them, sessions, tokens) or a state of the moment
// (errors, health), and a default is what a new route cannot forget. The
// few public, cacheable answers (the JWKS, static files) set their own.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}
