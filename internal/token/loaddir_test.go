package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeKeyFile writes k to dir/<name>.pem as a PKCS#8 private key, or as a
// PKIX public key when public is true, with the given modification time.
func writeKeyFile(t *testing.T, dir, name string, k Key, public bool, mtime time.Time) string {
	t.Helper()
	var block *pem.Block
	if public {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return writeFile(t, dir, name+".pem", pem.EncodeToMemory(block), mtime)
}

func writeFile(t *testing.T, dir, name string, data []byte, mtime time.Time) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func pemFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLoadDirGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "nested") // does not exist yet
	kr, err := LoadDir(dir, "", true)
	if err != nil {
		t.Fatalf("LoadDir generate: %v", err)
	}
	kid := kr.SigningKeyID()
	if len(kid) != 43 {
		t.Errorf("generated kid %q is not a thumbprint", kid)
	}
	if pub, _ := kr.lookup(kid); thumbprint(pub) != kid {
		t.Errorf("generated kid %q is not the thumbprint of its key", kid)
	}

	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, want 0700", di.Mode().Perm())
	}
	names := pemFiles(t, dir)
	if len(names) != 1 || names[0] != kid+".pem" {
		t.Fatalf("dir holds %v, want just %s.pem (no temp files left)", names, kid)
	}
	fi, err := os.Stat(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}

	// Reloading, with or without generate, finds the same key and does not
	// create another.
	for _, gen := range []bool{false, true} {
		kr2, err := LoadDir(dir, "", gen)
		if err != nil {
			t.Fatalf("reload (generate=%v): %v", gen, err)
		}
		if kr2.SigningKeyID() != kid {
			t.Errorf("reload (generate=%v): kid %q, want %q", gen, kr2.SigningKeyID(), kid)
		}
	}
	if n := len(pemFiles(t, dir)); n != 1 {
		t.Errorf("reload created keys: %d files", n)
	}

	// Tokens signed before a reload verify after it (same key material).
	m1 := mustManager(t, kr, fixedClock(t0))
	kr3, err := LoadDir(dir, kid, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustManager(t, kr3, fixedClock(t0)).Parse(m1.mustIssue(t)); err != nil {
		t.Errorf("token from generated key rejected after reload: %v", err)
	}
}

func TestLoadDirGenerateNamedKey(t *testing.T) {
	dir := t.TempDir()
	kr, err := LoadDir(dir, "2025-01", true)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() != "2025-01" {
		t.Errorf("kid = %q, want 2025-01", kr.SigningKeyID())
	}
	if _, err := os.Stat(filepath.Join(dir, "2025-01.pem")); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"../escape", "a/b", ".."} {
		if _, err := LoadDir(t.TempDir(), bad, true); err == nil {
			t.Errorf("signingKID %q: generated a key", bad)
		}
	}
}

func TestLoadDirGenerateKeepsPublicKeys(t *testing.T) {
	dir := t.TempDir()
	pub := fixedKey(1)
	writeKeyFile(t, dir, "peer", pub, true, time.Time{})
	kr, err := LoadDir(dir, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() == "peer" {
		t.Fatal("public key chosen for signing")
	}
	if _, ok := kr.lookup("peer"); !ok {
		t.Error("public key dropped after generating")
	}
}

func TestLoadDirNoPrivateKey(t *testing.T) {
	empty := t.TempDir()
	if _, err := LoadDir(empty, "", false); err == nil {
		t.Error("empty dir without generate: no error")
	}
	if _, err := LoadDir(filepath.Join(empty, "missing"), "", false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir without generate: err = %v, want ErrNotExist", err)
	}
	pubOnly := t.TempDir()
	writeKeyFile(t, pubOnly, "a", fixedKey(1), true, time.Time{})
	if _, err := LoadDir(pubOnly, "", false); err == nil {
		t.Error("public-only dir without generate: no error")
	}
	// Naming a public key as the signing key must not overwrite it.
	if _, err := LoadDir(pubOnly, "a", true); err == nil || !strings.Contains(err.Error(), "a.pem") {
		t.Errorf("signingKID of public-only key with generate: err = %v, want error naming a.pem", err)
	}
}

func TestLoadDirSelection(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	older, newer, tieLow, tieHigh, pub := fixedKey(1), fixedKey(2), fixedKey(3), fixedKey(4), fixedKey(5)
	writeKeyFile(t, dir, "older", older, false, base)
	writeKeyFile(t, dir, "newer", newer, false, base.Add(time.Hour))
	writeKeyFile(t, dir, "pub", pub, true, base.Add(2*time.Hour)) // newest, but public
	writeFile(t, dir, "README", []byte("not a key"), time.Time{})
	if err := os.Mkdir(filepath.Join(dir, "sub.pem"), 0o700); err != nil {
		t.Fatal(err)
	}

	kr, err := LoadDir(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() != "newer" {
		t.Errorf("newest: signing kid = %q, want newer", kr.SigningKeyID())
	}
	for _, kid := range []string{"older", "newer", "pub"} {
		if _, ok := kr.lookup(kid); !ok {
			t.Errorf("kid %q not in keyring", kid)
		}
	}

	kr, err = LoadDir(dir, "older", false)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() != "older" {
		t.Errorf("by kid: signing kid = %q, want older", kr.SigningKeyID())
	}

	// Tie on mod time: greatest name wins.
	writeKeyFile(t, dir, "tie-a", tieLow, false, base.Add(3*time.Hour))
	writeKeyFile(t, dir, "tie-b", tieHigh, false, base.Add(3*time.Hour))
	kr, err = LoadDir(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() != "tie-b" {
		t.Errorf("tie: signing kid = %q, want tie-b", kr.SigningKeyID())
	}

	// Errors.
	if _, err := LoadDir(dir, "pub", false); err == nil || !strings.Contains(err.Error(), "pub.pem") {
		t.Errorf("signingKID of a public key: err = %v, want error naming pub.pem", err)
	}
	if _, err := LoadDir(dir, "nope", false); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown signingKID: err = %v", err)
	}
}

// TestLoadDirPublicKeyVerifies checks that a public-only file verifies tokens
// signed by the corresponding private key elsewhere (e.g. another replica
// that has rotated already).
func TestLoadDirPublicKeyVerifies(t *testing.T) {
	dir := t.TempDir()
	own, peer := fixedKey(1), fixedKey(2)
	writeKeyFile(t, dir, "own", own, false, time.Time{})
	writeKeyFile(t, dir, "peer", peer, true, time.Time{})
	kr, err := LoadDir(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	peerMgr := mustManager(t, mustKeyring(t, Key{ID: "peer", Private: peer.Private}), fixedClock(t0))
	if _, err := mustManager(t, kr, fixedClock(t0)).Parse(peerMgr.mustIssue(t)); err != nil {
		t.Errorf("token signed by public-file key rejected: %v", err)
	}
}

func TestLoadDirBadFiles(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPubDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, fixedKey(9))})

	for name, data := range map[string][]byte{
		"not-pem":       []byte("hello"),
		"corrupt-der":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}),
		"truncated":     good[:len(good)/2],
		"ec-private":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"ec-public":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER}),
		"wrong-type":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}),
		"two-blocks":    append(append([]byte{}, good...), good...),
		"trailing-junk": append(append([]byte{}, good...), "junk"...),
		"encrypted":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: ecDER}),
		"huge":          append(append([]byte{}, good...), make([]byte, maxKeyFileSize)...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyFile(t, dir, "fine", fixedKey(1), false, time.Time{})
			path := writeFile(t, dir, name+".pem", data, time.Time{})
			_, err := LoadDir(dir, "", true)
			if err == nil {
				t.Fatal("LoadDir succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}

	t.Run("empty kid", func(t *testing.T) {
		dir := t.TempDir()
		writeKeyFile(t, dir, "", fixedKey(1), false, time.Time{})
		if _, err := LoadDir(dir, "", false); err == nil || !strings.Contains(err.Error(), ".pem") {
			t.Errorf("err = %v", err)
		}
	})
}

func mustPKCS8(t *testing.T, k Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadDirSymlink(t *testing.T) {
	// Kubernetes Secret volumes expose files as symlinks into a hidden
	// directory; those must load, and the hidden directory must not.
	dir := t.TempDir()
	data := filepath.Join(dir, "..data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, data, "k1", fixedKey(1), false, time.Time{})
	if err := os.Symlink(filepath.Join("..data", "k1.pem"), filepath.Join(dir, "k1.pem")); err != nil {
		t.Skipf("symlinks unsupported: %v", err)
	}
	kr, err := LoadDir(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SigningKeyID() != "k1" {
		t.Errorf("kid = %q", kr.SigningKeyID())
	}
}
