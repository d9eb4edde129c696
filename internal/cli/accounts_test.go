package cli_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/mtls"
)

// TestServiceAccountCommands: create prints a client id and a secret that
// signs in once; list shows the account; revoke ends it.
func TestServiceAccountCommands(t *testing.T) {
	e := newEnv(t)
	r := run(t, e, "", "admin", "service-account", "create", "--name", "orders", "--scopes", "users:read,users:write")
	expect(t, r, 0)
	m := regexp.MustCompile(`(?m)^client_id=(\S+)\nclient_secret=(\S+)$`).FindStringSubmatch(r.stdout)
	if m == nil || !uuidRE.MatchString(m[1]) || len(m[2]) < 40 {
		t.Fatalf("create printed:\n%s", r)
	}
	id, secret := m[1], m[2]

	core := openCore(t, e)
	cs, err := core.Service.AuthClient(t.Context(), id, secret)
	if err != nil || cs.Scope != "users:read users:write" {
		t.Fatalf("sign in with the printed secret: %+v %v", cs, err)
	}
	stored, err := core.Store.ServiceAccountByID(t.Context(), id)
	if err != nil || strings.Contains(stored.SecretHash, secret) {
		t.Fatalf("stored account %+v (err %v): the secret must be stored hashed", stored, err)
	}
	_ = core.Close()

	r = run(t, e, "", "admin", "service-account", "list")
	expect(t, r, 0)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "orders") || !strings.Contains(r.stdout, "users:read users:write") {
		t.Errorf("list:\n%s", r)
	}
	expect(t, run(t, e, "", "admin", "service-account", "revoke", "--id", id), 0)
	expect(t, run(t, e, "", "admin", "service-account", "revoke", "--id", id), 1, "no such active service account")

	expect(t, run(t, e, "", "admin", "service-account", "create", "--name", "x", "--scopes", "users:everything"), 2, "unknown scope")
	expect(t, run(t, e, "", "admin", "service-account", "create", "--scopes", "users:read"), 2, "--name")
	expect(t, run(t, e, "", "admin", "service-account"), 2, "missing subcommand")
}

// TestCertsGenerate writes a CA and certificates the mtls package accepts,
// with the service name in the server certificate, and refuses to
// overwrite them.
func TestCertsGenerate(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "certs")
	expect(t, run(t, e, "", "certs", "generate", "--dir", dir, "--hosts", "user-service.internal,10.0.0.7"), 0)
	if _, err := mtls.ServerConfig(mtls.Files{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"), CA: filepath.Join(dir, "ca.pem")}); err != nil {
		t.Fatal(err)
	}
	if _, err := mtls.ClientConfig(mtls.Files{Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem"), CA: filepath.Join(dir, "ca.pem")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname(mtls.ServerName); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("10.0.0.7"); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v (err %v), want 0600", fi.Mode(), err)
	}
	expect(t, run(t, e, "", "certs", "generate", "--dir", dir), 1, "exists")
}
