package rpc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

// TestInstanceLeavesWhileItsDatabaseIsDown: a server whose health check
// (its database) fails leaves the registry, its periodic renewals do not
// put it back, and it registers again once the check passes.
func TestInstanceLeavesWhileItsDatabaseIsDown(t *testing.T) {
	st := stack.New(t, stack.Options{})
	reg := rpc.NewMemoryRegistry()
	var (
		down   atomic.Bool
		checks atomic.Int64
	)
	healthy := func(context.Context) error {
		checks.Add(1)
		if down.Load() {
			return errors.New("database (USERSVC_MYSQL_DSN) unreachable")
		}
		return nil
	}
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, TTL: 300 * time.Millisecond,
		GracePeriod: time.Second, Healthy: healthy}, rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := rpc.HasInstances(reg, rpc.ServiceName); err != nil {
		t.Fatalf("registered at start: %v", err)
	}

	down.Store(true)
	testenv.Eventually(t, 5*time.Second, "the instance to leave", func() bool {
		return errors.Is(rpc.HasInstances(reg, rpc.ServiceName), rpc.ErrNoInstance)
	})
	// Renewals run on the check's cadence (TTL/3): three more checks span
	// at least two renewals, which must not have put it back.
	left := checks.Load()
	testenv.Eventually(t, 5*time.Second, "three more checks", func() bool { return checks.Load() >= left+3 })
	if err := rpc.HasInstances(reg, rpc.ServiceName); !errors.Is(err, rpc.ErrNoInstance) {
		t.Fatalf("a renewal put the instance back while its database is down: %v", err)
	}

	down.Store(false)
	testenv.Eventually(t, 5*time.Second, "the instance to register again", func() bool {
		return rpc.HasInstances(reg, rpc.ServiceName) == nil
	})
}
