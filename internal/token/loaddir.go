package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxKeyFileSize bounds how much of a "*.pem" file LoadDir reads. An Ed25519
// PEM key is ~120 bytes; anything near this limit is not a key, and the bound
// keeps a misplaced large file from being read into memory.
const maxKeyFileSize = 64 << 10

// LoadDir builds a keyring from the "*.pem" files in dir (not recursive):
// PKCS#8 Ed25519 private keys (PEM type "PRIVATE KEY") and PKIX Ed25519 public
// keys ("PUBLIC KEY"). The kid of each key is its file name without ".pem",
// so rotating is a matter of adding a file, and retiring a key of deleting it.
// Every key in the directory verifies tokens; exactly one private key signs.
//
// signingKID chooses the signing key, which must be a private key. When it is
// empty the private key whose file has the newest modification time is used
// (ties broken by the greatest name), so dropping a new key file into the
// directory and restarting rotates without a configuration change.
//
// When generate is true and dir holds no private key, LoadDir creates dir
// (mode 0700) if needed and writes a new private key file with mode 0600. The
// file is named after the new key's RFC 7638 thumbprint, or after signingKID
// if that is set, so that the configured kid is the one that gets created.
// The file is written to a temporary name and renamed into place so that a
// crash never leaves a truncated key behind. Generation is meant for
// development and single-instance deployments: replicas starting together on
// an empty shared directory would each create their own key. Provision keys
// ahead of time for anything larger.
//
// Errors about a specific key file name that file. Symbolic links are
// followed (Kubernetes mounts Secrets through them).
func LoadDir(dir, signingKID string, generate bool) (*Keyring, error) {
	keys, err := readKeyDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && generate:
		keys = nil
	case err != nil:
		return nil, err
	}

	hasPrivate := false
	for _, f := range keys {
		if f.key.Private != nil {
			hasPrivate = true
			break
		}
	}
	if !hasPrivate {
		if !generate {
			return nil, fmt.Errorf("token: key directory %s holds no private key", dir)
		}
		if signingKID != "" {
			for _, f := range keys {
				if f.key.ID == signingKID {
					// Generating would replace a public key the operator put
					// there; refuse instead.
					return nil, fmt.Errorf("token: signing key %q (%s) is a public key, not a private key", signingKID, f.path)
				}
			}
		}
		if _, err := generateKeyFile(dir, signingKID); err != nil {
			return nil, err
		}
		// Reload rather than using the generated key directly, so that what
		// this call returns is exactly what the next start will load.
		return LoadDir(dir, signingKID, false)
	}

	var signing *keyFile
	if signingKID != "" {
		for i := range keys {
			if keys[i].key.ID == signingKID {
				signing = &keys[i]
				break
			}
		}
		if signing == nil {
			return nil, fmt.Errorf("token: signing key %q: no file %s in %s", signingKID, signingKID+".pem", dir)
		}
		if signing.key.Private == nil {
			return nil, fmt.Errorf("token: signing key %q (%s) is a public key, not a private key", signingKID, signing.path)
		}
	} else {
		for i := range keys {
			f := &keys[i]
			if f.key.Private == nil {
				continue
			}
			if signing == nil || f.modTime.After(signing.modTime) ||
				(f.modTime.Equal(signing.modTime) && f.key.ID > signing.key.ID) {
				signing = f
			}
		}
	}

	verify := make([]Key, 0, len(keys)-1)
	for _, f := range keys {
		if f.key.ID != signing.key.ID {
			verify = append(verify, f.key)
		}
	}
	kr, err := NewKeyring(signing.key, verify...)
	if err != nil {
		return nil, fmt.Errorf("token: key directory %s: %w", dir, err)
	}
	return kr, nil
}

// keyFile is one parsed key file.
type keyFile struct {
	path    string
	key     Key
	modTime time.Time
}

// readKeyDir parses every "*.pem" file in dir.
func readKeyDir(dir string) ([]keyFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token: read key directory: %w", err)
	}
	var out []keyFile
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".pem") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks, unlike e.Info()
		if err != nil {
			return nil, fmt.Errorf("token: key file %s: %w", path, err)
		}
		if fi.IsDir() {
			continue
		}
		kid := strings.TrimSuffix(name, ".pem")
		if kid == "" {
			return nil, fmt.Errorf("token: key file %s: empty key ID (file name is just %q)", path, ".pem")
		}
		key, err := readKeyFile(path, kid)
		if err != nil {
			return nil, fmt.Errorf("token: key file %s: %w", path, err)
		}
		out = append(out, keyFile{path: path, key: key, modTime: fi.ModTime()})
	}
	return out, nil
}

// readKeyFile parses one PEM file holding exactly one Ed25519 key.
func readKeyFile(path, kid string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return Key{}, err
	}
	if len(data) > maxKeyFileSize {
		return Key{}, fmt.Errorf("larger than %d bytes, not a key", maxKeyFileSize)
	}
	return parseKeyPEM(data, kid)
}

// parseKeyPEM decodes a single "PRIVATE KEY" (PKCS#8) or "PUBLIC KEY" (PKIX)
// PEM block. Extra blocks or trailing data are rejected rather than ignored:
// a file that is not what it looks like is a deployment mistake worth
// surfacing.
func parseKeyPEM(data []byte, kid string) (Key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return Key{}, errors.New("no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return Key{}, errors.New("unexpected data after the PEM block (one key per file)")
	}
	if len(block.Headers) != 0 {
		return Key{}, errors.New("PEM headers present (encrypted keys are not supported)")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("parse PKCS#8 private key: %w", err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return Key{}, fmt.Errorf("private key is %T, want Ed25519", k)
		}
		return Key{ID: kid, Private: priv, Public: priv.Public().(ed25519.PublicKey)}, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("parse PKIX public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return Key{}, fmt.Errorf("public key is %T, want Ed25519", k)
		}
		return Key{ID: kid, Public: pub}, nil
	default:
		return Key{}, fmt.Errorf("PEM block type %q, want %q or %q", block.Type, "PRIVATE KEY", "PUBLIC KEY")
	}
}

// generateKeyFile creates a new private key in dir as "<kid>.pem" and returns
// it. kid defaults to the key's thumbprint.
func generateKeyFile(dir, kid string) (Key, error) {
	key, err := GenerateKey()
	if err != nil {
		return Key{}, err
	}
	if kid != "" {
		if kid != filepath.Base(kid) || kid == "." || kid == ".." || strings.ContainsAny(kid, `/\`) {
			return Key{}, fmt.Errorf("token: signing key ID %q is not usable as a file name", kid)
		}
		key.ID = kid
	}
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		return Key{}, fmt.Errorf("token: marshal generated key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("token: create key directory: %w", err)
	}
	path := filepath.Join(dir, key.ID+".pem")
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return Key{}, fmt.Errorf("token: write key file %s: %w", path, err)
	}
	return key, nil
}

// writeFileAtomic writes data to path via a temporary file in the same
// directory and a rename, so readers see either no file or the whole file.
// The temporary name does not end in ".pem", so a concurrent LoadDir ignores
// it. The file is created with perm from the start (never briefly readable by
// others) and synced, as is the directory, so the key survives a crash.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: not every platform/filesystem supports syncing a
		// directory, and the key is already in place.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// GenerateKeyFile writes a new Ed25519 private key to dir as "<kid>.pem" and
// returns its kid: the operator's step for provisioning or rotating keys
// (copy the file to every instance; it becomes the signing key as the newest
// one, or name it with USERSVC_JWT_SIGNING_KEY).
func GenerateKeyFile(dir string) (string, error) {
	k, err := generateKeyFile(dir, "")
	if err != nil {
		return "", err
	}
	return k.ID, nil
}
