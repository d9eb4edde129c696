package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/seal"
)

// mfaKeyFile is where the embedded default keeps the key it made.
const mfaKeyFile = "mfa.keys"

// LoadMFAKeys is the keyring that seals second-factor secrets:
// USERSVC_MFA_KEYS when set. Without it the embedded default makes one key
// on first start and keeps it in the data dir (0600), like its signing
// keys, so `usersvc dev` can enrol TOTP with no setup; a shared deployment
// gets none (nil: TOTP unavailable) rather than a different key per
// instance.
func LoadMFAKeys(cfg *config.Config) (*seal.Keyring, error) {
	if len(cfg.MFAKeys) > 0 || !Embedded(cfg) {
		return cfg.MFAKeyring()
	}
	path := filepath.Join(cfg.DataDir, mfaKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, kerr := seal.NewKey()
		if kerr != nil {
			return nil, kerr
		}
		b = []byte("dev:" + key + "\n")
		if err = os.MkdirAll(cfg.DataDir, 0o700); err == nil {
			// O_EXCL: of two processes starting at once, one writes and
			// the other reads what it wrote on its next start.
			err = writeNew(path, b)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mfa key in %s: %w", path, err)
	}
	keys, err := seal.ParseKeys(strings.TrimSpace(string(b)))
	if err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("mfa key in %s: not <id>:<base64 key> (%v)", path, err)
	}
	return seal.NewKeyring(keys, "")
}

func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
