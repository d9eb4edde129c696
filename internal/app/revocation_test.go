package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// loadTestConfig is the config of cmd with cheap argon2 parameters.
func loadTestConfig(t *testing.T, cmd string, args ...string) *config.Config {
	t.Helper()
	args = append(args, "--argon2-memory-kib", "64", "--argon2-iterations", "1")
	cfg, _, err := config.Load(cmd, args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestCore(t *testing.T, cfg *config.Config, mode Mode) *Core {
	t.Helper()
	core, err := NewCore(context.Background(), cfg, slog.New(slog.DiscardHandler), mode)
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// serviceArgs are the flags of a service instance on a private, migrated
// MariaDB database with signing keys made for the test.
func serviceArgs(t *testing.T) []string {
	t.Helper()
	dsn := testenv.MySQLDSN(t)
	st, err := sqlstore.Open(context.Background(), "mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := token.LoadDir(keys, "", true); err != nil {
		t.Fatal(err)
	}
	return []string{"--mysql-dsn", dsn, "--jwt-keys-dir", keys, "--data-dir", t.TempDir()}
}

// signInAndOut registers a user on core, signs in and logs out, and
// returns the logged-out access token.
func signInAndOut(t *testing.T, core *Core) string {
	t.Helper()
	ctx := context.Background()
	const pw = "correct horse battery staple"
	if _, err := core.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "alice@example.com", Password: pw, Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	s, err := core.Service.Auth(ctx, "alice@example.com", pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Service.Revoke(ctx, s.RefreshToken, s.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Service.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("logged-out token on the instance that logged it out: %v", err)
	}
	return s.AccessToken
}

// A logged-out access token stays logged out after the dev-mode process
// restarts (no Redis).
func TestLogoutSurvivesRestart(t *testing.T) {
	cfg := loadTestConfig(t, "dev", "--data-dir", t.TempDir())
	first := newTestCore(t, cfg, ModeDev)
	access := signInAndOut(t, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := newTestCore(t, cfg, ModeDev)
	defer restarted.Close()
	if _, err := restarted.Service.Validate(context.Background(), access); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("logged-out token after a restart: %v, want %v", err, user.ErrInvalidToken)
	}
}

// Service instances without Redis share only the database; a logout on
// one holds on the other.
func TestLogoutHoldsOnEveryInstanceWithoutRedis(t *testing.T) {
	ctx := context.Background()
	cfg := loadTestConfig(t, "service", serviceArgs(t)...)
	a, b := newTestCore(t, cfg, ModeService), newTestCore(t, cfg, ModeService)
	defer a.Close()
	defer b.Close()
	access := signInAndOut(t, a)
	if _, err := b.Service.Validate(ctx, access); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("token logged out on instance a, on instance b: %v, want %v", err, user.ErrInvalidToken)
	}
}
