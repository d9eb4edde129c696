package rpc_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/usersvc/usersvc/internal/rpc"
)

// TestMain keeps go-micro's start/stop lines out of test and benchmark
// output; its warnings and errors still show.
func TestMain(m *testing.M) {
	rpc.UseLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
