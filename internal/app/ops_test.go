package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/user"
)

func TestReadinessOptionalChecks(t *testing.T) {
	fail := func(context.Context) error { return errors.New("down") }
	ok := func(context.Context) error { return nil }
	rep, ready := readiness(context.Background(), []check{{name: "db", fn: ok}, {name: "redis", fn: fail, optional: true}})
	if !ready || rep.Status != "ready" || rep.Checks["db"] != "ok" || !strings.HasPrefix(rep.Checks["redis"], "degraded") || rep.Error != "" {
		t.Fatalf("optional failure: ready=%v %+v", ready, rep)
	}
	rep, ready = readiness(context.Background(), []check{{name: "db", fn: fail}})
	if ready || rep.Status != "unavailable" || rep.Error != "db: down" {
		t.Fatalf("required failure: ready=%v %+v", ready, rep)
	}
}

// TestCoreMetrics builds the dev-mode core on a temp data dir and checks the
// cache counters and the outbox gauge move with real calls.
func TestCoreMetrics(t *testing.T) {
	cfg, _, err := config.Load("dev", []string{"--data-dir", t.TempDir(), "--argon2-memory-kib", "64", "--argon2-iterations", "1"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	core, err := NewCore(ctx, cfg, slog.New(slog.DiscardHandler), ModeDev)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	reg := coreMetrics(core)
	u, err := core.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "m@example.com", Password: "correct horse battery staple", Name: "M"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := core.Service.Get(ctx, user.SystemActor, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "usersvc_user_cache_hits_total", "usersvc_user_cache_misses_total", "usersvc_outbox_pending_events")
	if err != nil || n != 3 {
		t.Fatalf("metrics: %d series, %v", n, err)
	}
	want := `
# HELP usersvc_outbox_pending_events Events committed but not yet confirmed by the broker.
# TYPE usersvc_outbox_pending_events gauge
usersvc_outbox_pending_events 1
# HELP usersvc_user_cache_hits_total User reads answered from the cache.
# TYPE usersvc_user_cache_hits_total counter
usersvc_user_cache_hits_total 2
# HELP usersvc_user_cache_misses_total User reads that went to the database.
# TYPE usersvc_user_cache_misses_total counter
usersvc_user_cache_misses_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "usersvc_user_cache_hits_total",
		"usersvc_user_cache_misses_total", "usersvc_outbox_pending_events"); err != nil {
		t.Fatal(err)
	}
}
