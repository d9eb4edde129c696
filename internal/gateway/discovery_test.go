package gateway_test

import (
	"context"
	"github.com/usersvc/usersvc/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/gateway"
	"github.com/usersvc/usersvc/internal/rpc"
)

// The gateway on the real discovery over go-micro's memory registry (the
// dev mode's), with instances that register the way the API does.
func TestGatewayWithRegistry(t *testing.T) {
	reg := rpc.NewMemoryRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw, err := gateway.New(ctx, gateway.Config{
		Routes: []gateway.Route{{Prefix: "/user", Service: api}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, rpc.NewDiscovery(reg))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	e := &env{t: t, gw: gw, srv: srv}

	testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return e.get("/readyz").status == http.StatusServiceUnavailable })
	wantError(t, e.get("/user/me"), http.StatusServiceUnavailable, "unavailable")

	a, b := newBackend(t, "a"), newBackend(t, "b")
	deregA, err := rpc.RegisterHTTP(reg, api, a.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer deregA()
	deregB, err := rpc.RegisterHTTP(reg, api, b.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer deregB()

	testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return gw.Ready() == nil })
	// Both instances serve once discovery has reported both.
	testenv.Eventually(t, 5*time.Second, "the condition", func() bool {
		e.get("/user/me")
		return a.hits.Load() > 0 && b.hits.Load() > 0
	})

	deregA()
	// Discovery reports the change asynchronously; after that, A gets
	// nothing more.
	testenv.Eventually(t, 5*time.Second, "the condition", func() bool {
		before := a.hits.Load()
		for range 4 {
			if r := e.get("/user/me"); r.status != http.StatusOK {
				t.Fatalf("status %d during deregistration", r.status)
			}
		}
		return a.hits.Load() == before
	})
	before := a.hits.Load()
	for range 20 {
		e.get("/user/me")
	}
	if a.hits.Load() != before {
		t.Errorf("deregistered instance got %d requests", a.hits.Load()-before)
	}

	deregB()
	testenv.Eventually(t, 5*time.Second, "the condition", func() bool { return gw.Ready() != nil })
	wantError(t, e.get("/user/me"), http.StatusServiceUnavailable, "unavailable")
}
