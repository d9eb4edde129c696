package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/usersvc/usersvc/internal/config"
)

// healthcheck probes GET /healthz and succeeds on 200. It is the container
// health check of the one image every role runs (the final image has no
// shell or curl), so without --url it cannot know the role: it tries the
// listeners the configuration names — http_addr (gateway, dev), api_addr
// (api), ops_addr (service, worker) — and the first that accepts the
// connection decides. Only the role's own listener is open in its
// container, so a refused connection just means "not this role".
func healthcheck(ctx context.Context, cfg *config.Config, url string, io IO) error {
	urls := []string{url}
	if url == "" {
		urls = healthURLs(cfg)
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	var errs []error
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("%w: --url %q: %v", errUsage, u, err)
		}
		res, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: %s answered %s", u, res.Status)
		}
		fmt.Fprintln(io.Stdout, u, "ok")
		return nil
	}
	return fmt.Errorf("healthcheck: nothing answered: %w", errors.Join(errs...))
}

// healthURLs are the /healthz URLs of the configured listeners, dialled on
// loopback when they listen on every interface; a port 0 is skipped (its
// real port is only in the log).
func healthURLs(cfg *config.Config) []string {
	var urls []string
	for _, addr := range []string{cfg.HTTPAddr, cfg.APIAddr, cfg.OpsAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			continue
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		urls = append(urls, "http://"+net.JoinHostPort(host, port)+"/healthz")
	}
	return urls
}
