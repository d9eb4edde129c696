// Package health is the one shape of every process's probes, so an
// operator (and a load balancer) reads the same JSON from the gateway, the
// API, the service, the worker and dev mode:
//
//	GET /healthz  200 {"status":"ok"}
//	GET /readyz   200 {"status":"ready","checks":{"user.service":"ok"}}
//	              503 {"status":"unavailable","checks":{…},"error":"user.service: …"}
//
// A check whose failure only degrades the process (an optional dependency
// such as Redis) reads "degraded: …" and keeps the process ready.
package health

import (
	"context"
	"time"
)

// Check is one dependency of a process's readiness.
type Check struct {
	Name string
	Fn   func(context.Context) error
	// Optional checks report "degraded: …" and never make the process
	// unready.
	Optional bool
}

// Report is the body of /readyz.
type Report struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	// Error names the first failing required check (503 only).
	Error string `json:"error,omitempty"`
}

// Live is the body of /healthz.
var Live = map[string]string{"status": "ok"}

// Ready runs every check, each bounded by timeout, and reports.
func Ready(ctx context.Context, timeout time.Duration, checks []Check) (Report, bool) {
	r := Report{Status: "ready", Checks: make(map[string]string, len(checks))}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Fn(cctx)
		cancel()
		switch {
		case err == nil:
			r.Checks[c.Name] = "ok"
		case c.Optional:
			r.Checks[c.Name] = "degraded: " + err.Error()
		default:
			r.Checks[c.Name] = err.Error()
			if r.Error == "" {
				r.Error = c.Name + ": " + err.Error()
			}
		}
	}
	if r.Error != "" {
		r.Status = "unavailable"
		return r, false
	}
	return r, true
}
