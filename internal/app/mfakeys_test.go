package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/config"
)

// TestLoadMFAKeys: the embedded default makes a key once and keeps it
// (0600), so secrets sealed before a restart open after it; configured
// keys win; a shared deployment without keys gets none.
func TestLoadMFAKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	load := func(env map[string]string) *config.Config {
		t.Helper()
		env["USERSVC_DATA_DIR"] = dir
		cfg, _, err := config.Load("dev", nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	first, err := LoadMFAKeys(load(map[string]string{}))
	if err != nil || first == nil {
		t.Fatalf("first start: %v, %v", first, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, mfaKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	sealed, _ := first.Seal([]byte("s"), "c")
	again, err := LoadMFAKeys(load(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := again.Open(sealed, "c"); err != nil || string(got) != "s" {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	configured, err := LoadMFAKeys(load(map[string]string{"USERSVC_MFA_KEYS": "ops:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}))
	if err != nil || configured.Current() != "ops" {
		t.Fatalf("configured keys: %v, %v", configured, err)
	}
	shared, err := LoadMFAKeys(load(map[string]string{"USERSVC_MYSQL_DSN": "u:p@tcp(127.0.0.1:1)/x"}))
	if err != nil || shared != nil {
		t.Fatalf("shared deployment without keys: %v, %v", shared, err)
	}
}

// TestRequireAdminMFANeedsKeys: a service with USERSVC_REQUIRE_ADMIN_MFA on
// and no keys to seal factors with refuses to start (no admin could enrol
// one, so none could administer); the admin CLI, the way back in, still
// builds.
func TestRequireAdminMFANeedsKeys(t *testing.T) {
	ctx := context.Background()
	args := append(serviceArgs(t), "--require-admin-mfa", "true")
	_, err := NewCore(ctx, loadTestConfig(t, "service", args...), slog.New(slog.DiscardHandler), ModeService)
	if err == nil || !strings.Contains(err.Error(), "USERSVC_REQUIRE_ADMIN_MFA needs USERSVC_MFA_KEYS") {
		t.Fatalf("a service without MFA keys under require_admin_mfa: %v", err)
	}
	withKeys := append(args, "--mfa-keys", "ops:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	_ = newTestCore(t, loadTestConfig(t, "service", withKeys...), ModeService).Close()
	_ = newTestCore(t, loadTestConfig(t, "admin create", args...), ModeTool).Close()
}
