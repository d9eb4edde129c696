package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, rest, err := Load("dev", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 || c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || c.AccessTTL != 15*time.Minute ||
		c.Argon2MemoryKiB != 19456 || c.JWTKeysDir != filepath.Join("data", "keys") || c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestPrecedence: flags win over the environment, the environment over the
// file, the file over the defaults.
func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "usersvc.yaml")
	err := os.WriteFile(file, []byte("http_addr: 127.0.0.1:1111\ngrpc_addr: 127.0.0.1:2222\naccess_ttl: 5m\netcd_endpoints: [a:1, b:2]\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := Load("service", []string{"--config", file, "--http-addr", "127.0.0.1:3333"},
		env(map[string]string{"USERSVC_HTTP_ADDR": "127.0.0.1:4444", "USERSVC_GRPC_ADDR": "127.0.0.1:5555"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:3333" {
		t.Errorf("flag lost to env: %s", c.HTTPAddr)
	}
	if c.GRPCAddr != "127.0.0.1:5555" {
		t.Errorf("env lost to file: %s", c.GRPCAddr)
	}
	if c.AccessTTL != 5*time.Minute || strings.Join(c.Etcd, ",") != "a:1,b:2" {
		t.Errorf("file values: %v %v", c.AccessTTL, c.Etcd)
	}
	// USERSVC_CONFIG names the file too.
	c, _, err = Load("service", nil, env(map[string]string{"USERSVC_CONFIG": file}), io.Discard)
	if err != nil || c.GRPCAddr != "127.0.0.1:2222" {
		t.Fatalf("USERSVC_CONFIG: %v %v", err, c)
	}
}

// TestErrorsNameTheSetting: each bad value is reported with where it came from.
func TestErrorsNameTheSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte("no_such_setting: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{env: map[string]string{"USERSVC_ACCESS_TTL": "soon"}, want: "USERSVC_ACCESS_TTL"},
		{env: map[string]string{"USERSVC_HTTP_ADDR": "nohost"}, want: "USERSVC_HTTP_ADDR"},
		{env: map[string]string{"USERSVC_ARGON2_MEMORY_KIB": "-1"}, want: "USERSVC_ARGON2_MEMORY_KIB"},
		{env: map[string]string{"USERSVC_LOG_LEVEL": "loud"}, want: "USERSVC_LOG_LEVEL"},
		{args: []string{"--smtp-tls", "maybe"}, want: "--smtp-tls"},
		{args: []string{"--config", file}, want: "no_such_setting"},
		{args: []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, want: "missing.yaml"},
	}
	for _, tc := range cases {
		_, _, err := Load("api", tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v does not name %s", tc.args, tc.env, err, tc.want)
		}
	}
	c, _, err := Load("api", nil, env(map[string]string{"USERSVC_PUBLIC_URL": "ftp://x"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require("etcd_endpoints", "mysql_dsn"); err == nil ||
		!strings.Contains(err.Error(), "USERSVC_ETCD_ENDPOINTS") || !strings.Contains(err.Error(), "USERSVC_MYSQL_DSN") ||
		!strings.Contains(err.Error(), "USERSVC_PUBLIC_URL") {
		t.Errorf("Require: %v", err)
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	u := Usage()
	for _, s := range settings {
		if !strings.Contains(u, s.env()) || !strings.Contains(u, "--"+s.flag()) {
			t.Errorf("usage misses %s", s.key)
		}
	}
}

// TestReadmeDocumentsEverySetting keeps the README's configuration table in
// step with the code.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(b), "`"+s.env()+"` | `--"+s.flag()+"`") {
			t.Errorf("README.md does not document %s (--%s)", s.env(), s.flag())
		}
	}
}

// TestOpsAddrDefaults: the service and worker roles have fixed, distinct
// health ports by default; a setting overrides them.
func TestOpsAddrDefaults(t *testing.T) {
	for cmd, want := range map[string]string{"service": "127.0.0.1:9091", "worker": "127.0.0.1:9092", "migrate": "127.0.0.1:0"} {
		c, _, err := Load(cmd, nil, env(nil), io.Discard)
		if err != nil || c.OpsAddr != want {
			t.Errorf("%s: ops addr %q (%v), want %s", cmd, c.OpsAddr, err, want)
		}
	}
	c, _, err := Load("service", []string{"--ops-addr", "127.0.0.1:7000"}, env(nil), io.Discard)
	if err != nil || c.OpsAddr != "127.0.0.1:7000" {
		t.Errorf("--ops-addr: %q (%v)", c.OpsAddr, err)
	}
}

// TestVerificationSwitches: both off by default; requiring verified
// addresses turns enumeration-safe sign-up on unless it is set explicitly.
func TestVerificationSwitches(t *testing.T) {
	cases := []struct {
		env            map[string]string
		require, quiet bool
	}{
		{nil, false, false},
		{map[string]string{"USERSVC_REQUIRE_VERIFIED_EMAIL": "true"}, true, true},
		{map[string]string{"USERSVC_REQUIRE_VERIFIED_EMAIL": "true", "USERSVC_SIGNUP_ENUMERATION_SAFE": "false"}, true, false},
		{map[string]string{"USERSVC_SIGNUP_ENUMERATION_SAFE": "1"}, false, true},
	}
	for _, tc := range cases {
		c, _, err := Load("dev", nil, env(tc.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.RequireVerifiedEmail != tc.require || c.SignupEnumerationSafe != tc.quiet || c.VerifyTTL != 24*time.Hour {
			t.Errorf("%v: require %v, enumeration-safe %v, verify_ttl %v", tc.env, c.RequireVerifiedEmail, c.SignupEnumerationSafe, c.VerifyTTL)
		}
	}
	if _, _, err := Load("dev", nil, env(map[string]string{"USERSVC_REQUIRE_VERIFIED_EMAIL": "yes please"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "USERSVC_REQUIRE_VERIFIED_EMAIL") {
		t.Errorf("bad boolean: %v", err)
	}
}

// TestRefreshReuseGrace: 10s by default, 0 turns it off, and it is bounded
// (a longer window is a longer blind spot for a stolen token).
func TestRefreshReuseGrace(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 10 * time.Second, "0": 0, "1m": time.Minute, "2s": 2 * time.Second} {
		c, _, err := Load("service", nil, env(map[string]string{"USERSVC_REFRESH_REUSE_GRACE": v}), io.Discard)
		if err != nil || c.RefreshReuseGrace != want {
			t.Errorf("USERSVC_REFRESH_REUSE_GRACE=%q: %v, %v; want %v", v, c, err, want)
		}
	}
	for _, v := range []string{"61s", "-1s", "soon"} {
		_, _, err := Load("service", []string{"--refresh-reuse-grace", v}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--refresh-reuse-grace") {
			t.Errorf("--refresh-reuse-grace %s: error %v does not name the flag", v, err)
		}
	}
}

// TestMFASettings: the keys parse into a keyring whose current key is
// mfa_key_id (or the first), a key id not among the keys is refused, and no
// error shows key material.
func TestMFASettings(t *testing.T) {
	a, b := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "//////////////////////////////////////////8="
	c, _, err := Load("service", nil, env(map[string]string{"USERSVC_MFA_KEYS": "2025:" + a + ",2026:" + b}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.MFATicketTTL != 5*time.Minute || c.RequireAdminMFA || len(c.MFAKeys) != 2 {
		t.Fatalf("defaults: ttl %v, require %v, %d keys", c.MFATicketTTL, c.RequireAdminMFA, len(c.MFAKeys))
	}
	if k, err := c.MFAKeyring(); err != nil || k.Current() != "2025" {
		t.Fatalf("keyring: %v, %v; want 2025 current", k, err)
	}
	c, _, err = Load("service", []string{"--mfa-key-id", "2026", "--require-admin-mfa", "true"},
		env(map[string]string{"USERSVC_MFA_KEYS": "2025:" + a + ",2026:" + b}), io.Discard)
	if err != nil || !c.RequireAdminMFA {
		t.Fatal(err)
	}
	if k, err := c.MFAKeyring(); err != nil || k.Current() != "2026" {
		t.Fatalf("keyring: %v, %v; want 2026 current", k, err)
	}
	if c, _, _ := Load("dev", nil, env(nil), io.Discard); c == nil || c.MFAKeys != nil {
		t.Errorf("no keys by default")
	} else if k, err := c.MFAKeyring(); k != nil || err != nil {
		t.Errorf("keyring without keys: %v, %v", k, err)
	}
	for _, tc := range []map[string]string{
		{"USERSVC_MFA_KEYS": "2025:" + a[:20]},
		{"USERSVC_MFA_KEYS": "2025:" + a, "USERSVC_MFA_KEY_ID": "2026"},
		{"USERSVC_MFA_KEY_ID": "2026"},
		{"USERSVC_MFA_KEYS": "2025:" + a, "USERSVC_MFA_KEY_ID": "20.25"},
	} {
		_, _, err := Load("service", nil, env(tc), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "USERSVC_MFA_KEY") || strings.Contains(err.Error(), a[:20]) {
			t.Errorf("%v: error %v (should name the setting and not show the key)", tc, err)
		}
	}
}
