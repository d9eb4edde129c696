package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usersvc/usersvc/internal/telemetry"
)

// dialTimeout is short on purpose: instances are on the local network and
// accept within milliseconds, so a connect that takes seconds means a dead
// host (packets dropped, not refused), and the request should move on to
// another instance quickly.
const dialTimeout = 2 * time.Second

// newTransport returns the one transport shared by all services: a single
// pool of keep-alive connections per instance, dialled with dial (nil: TCP).
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:       nil, // never route gateway→API traffic through an environment proxy
		DialContext: dial,
		// The gateway is the hot path: keep enough idle connections per
		// instance to absorb bursts without new handshakes (the default 2
		// makes every burst dial). No total cap: instances are few.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 256,
		// Below the API's IdleTimeout (120s), so the gateway closes an idle
		// connection before the instance does and never races it.
		IdleConnTimeout: 90 * time.Second,
		// Pass the client's Accept-Encoding and the instance's encoded body
		// through untouched instead of unzipping in the middle.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// instance is one address of a service.
type instance struct {
	addr string
	// downUntil is when the instance's cooldown ends, in Unix
	// nanoseconds; 0 (or past) means it is in the rotation.
	downUntil atomic.Int64
}

func (in *instance) coolingAt(now int64) bool { return in.downUntil.Load() > now }

// coolDown takes the instance out of the rotation until until, reporting
// whether it was in the rotation before (so only the first failure logs).
func (in *instance) coolDown(now, until int64) bool {
	return in.downUntil.Swap(until) <= now
}

// upstream is the http.RoundTripper of one service's ReverseProxy: it picks
// the instance, and moves to the next one when an instance cannot be
// reached. ReverseProxy does everything else (headers, streaming, errors).
type upstream struct {
	pool     *pool
	base     http.RoundTripper
	timeout  time.Duration
	cooldown time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// RoundTrip tries the instances round-robin from an atomic counter,
// skipping those cooling down (unless all are: then they are tried anyway,
// since a stale cooldown must not turn a recovered service into a 502),
// each at most once.
//
// It moves on to the next instance only when the request cannot have run:
//   - the connection could not be made (refused, unreachable, dial
//     timeout): the instance also cools down for FailCooldown;
//   - the connection broke before any response byte, on an idempotent
//     request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or one with an
//     Idempotency-Key header). A reset after the request was sent usually
//     means an instance shutting down, but it can also mean one that
//     crashed while running the request, and replaying a POST (a signup,
//     a password reset mail) would run it twice; such requests get 502.
//
// Once an instance has answered, even 5xx, the answer is final, as is a
// timeout: the request may have run.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	insts := u.pool.list()
	n := uint64(len(insts))
	if n == 0 {
		return nil, &upstreamError{service: u.pool.service, kind: noInstance}
	}
	now := u.now().UnixNano()
	rotating := 0
	for _, in := range insts {
		if !in.coolingAt(now) {
			rotating++
		}
	}
	start := u.pool.next.Add(1) - 1
	var last *upstreamError
	attempts := 0
	for i := range n {
		in := insts[(start+i)%n]
		if rotating > 0 && in.coolingAt(now) {
			continue
		}
		attempts++
		resp, retry, fail := u.try(req, in)
		if fail == nil {
			telemetry.GatewayUpstreamRequests.WithLabelValues(u.pool.service, "ok").Inc()
			return resp, nil
		}
		telemetry.GatewayUpstreamRequests.WithLabelValues(u.pool.service, fail.kind.String()).Inc()
		last = fail
		if !retry {
			break
		}
		telemetry.GatewayRetries.WithLabelValues(u.pool.service).Inc()
		u.log.DebugContext(req.Context(), "gateway: retrying on another instance", "upstream.service", u.pool.service,
			"upstream.instance", in.addr, "error", fail.err)
	}
	last.attempts = attempts // the loop ran at least once: some instance was in rotation, or all were tried
	return nil, last
}

// try sends req to one instance. On failure it reports whether the request
// is safe to send elsewhere.
func (u *upstream) try(req *http.Request, in *instance) (resp *http.Response, retry bool, failure *upstreamError) {
	fail := func(kind failureKind, err error) *upstreamError {
		return &upstreamError{service: u.pool.service, instance: in.addr, kind: kind, err: err}
	}
	ctx, cancel := context.WithTimeout(req.Context(), u.timeout)
	var answered atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { answered.Store(true) },
	})
	out := req.WithContext(ctx)
	target := *req.URL
	target.Scheme, target.Host = "http", in.addr
	out.URL = &target
	if req.GetBody != nil {
		// Each attempt reads its own copy of the buffered body: the
		// transport may still hold the previous one.
		body, err := req.GetBody()
		if err != nil {
			cancel()
			return nil, false, fail(failed, err)
		}
		out.Body = body
	}

	resp, err := u.base.RoundTrip(out)
	if err == nil {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, false, nil
	}
	timedOutNow := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()

	switch {
	case req.Context().Err() != nil:
		return nil, false, fail(clientGone, err)
	case isDialError(err):
		now := u.now()
		if in.coolDown(now.UnixNano(), now.Add(u.cooldown).UnixNano()) {
			u.log.WarnContext(req.Context(), "gateway: instance unreachable; leaving it out of the rotation",
				"upstream.service", u.pool.service, "upstream.instance", in.addr, "for", u.cooldown, "error", err)
		}
		return nil, true, fail(unreachable, err)
	case timedOutNow:
		return nil, false, fail(timedOut, err)
	case !answered.Load() && connectionLost(err) && idempotent(req):
		return nil, true, fail(unreachable, err)
	default:
		return nil, false, fail(failed, err)
	}
}

// isDialError reports a failure to connect: nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectionLost reports a connection that broke or was closed by the
// instance (net/http reports a close before any response byte as "server
// closed idle connection", even on a fresh connection). A reset that
// arrives while the body is still being written can also surface as
// net.ErrClosed: the transport's reader saw it and closed the connection
// under its writer ("write: use of closed network connection").
func connectionLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "server closed idle connection")
}

// idempotent reports whether sending req twice has the effect of sending it
// once (RFC 9110 §9.2.2), which is what makes a blind replay acceptable.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// cancelOnClose ends an attempt's context when ReverseProxy is done with
// the response body: the attempt's deadline covers the body too.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type failureKind int

const (
	failed      failureKind = iota // broke in a way that may have run the request
	unreachable                    // could not be sent (or safely replayable)
	timedOut
	noInstance
	clientGone
)

// String is the failure's outcome label in
// usersvc_gateway_upstream_requests_total.
func (k failureKind) String() string {
	switch k {
	case unreachable:
		return "unreachable"
	case timedOut:
		return "timeout"
	case noInstance:
		return "no_instance"
	case clientGone:
		return "client_gone"
	default:
		return "error"
	}
}

// upstreamError is why a request got no response; proxyError maps its kind
// to the status.
type upstreamError struct {
	service  string
	instance string // the last one tried
	attempts int
	kind     failureKind
	err      error
}

func (e *upstreamError) Error() string {
	if e.kind == noInstance {
		return noInstanceMessage(e.service)
	}
	return e.service + " at " + e.instance + ": " + e.err.Error()
}

func (e *upstreamError) Unwrap() error { return e.err }
