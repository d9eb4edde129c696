package sqlstore

import (
	"bytes"
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/store/storetest"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

func TestFactorsSQLite(t *testing.T) {
	storetest.RunFactors(t, func(t *testing.T) storetest.FactorStore {
		return openTest(t, "sqlite", sqliteTestDSN(t), true)
	})
}

func TestFactorsMySQL(t *testing.T) {
	testenv.Need(t, mysqlEnv)
	storetest.RunFactors(t, func(t *testing.T) storetest.FactorStore {
		return openTest(t, "mysql", testenv.MySQLDSN(t), true)
	})
}

// TestTOTPSecretUnreadableWithoutKey reads a factor's row as someone with
// the database but not the key would: neither the base32 seed nor its
// bytes are in it, it opens under the configured key, and not under
// another key, nor as another row's secret.
func TestTOTPSecretUnreadableWithoutKey(t *testing.T) {
	dialects(t, func(t *testing.T, driver, dsn string) {
		ctx := t.Context()
		s := openTest(t, driver, dsn, true)
		u := &user.User{ID: uuid.Must(uuid.NewV7()).String(), Email: "mfa-" + uuid.NewString()[:8] + "@example.com", Name: "M",
			Role: user.RoleUser, Status: user.StatusActive, PasswordHash: "x", SessionVersion: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		ring, err := seal.NewRandomKeyring("k1")
		if err != nil {
			t.Fatal(err)
		}
		enrol, err := factor.NewTOTP("usersvc", u.Email)
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.Must(uuid.NewV7()).String()
		sealed, err := ring.Seal([]byte(enrol.Secret), "totp:"+id)
		if err != nil {
			t.Fatal(err)
		}
		f := factor.Factor{ID: id, UserID: u.ID, Kind: factor.KindTOTP, Name: "phone", Secret: sealed, CreatedAt: time.Now()}
		if err := s.CreateFactor(ctx, f); err != nil {
			t.Fatal(err)
		}

		var row []byte
		if err := s.DB().QueryRowContext(ctx, `SELECT secret FROM mfa_factors WHERE id = ?`, id).Scan(&row); err != nil {
			t.Fatal(err)
		}
		raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enrol.Secret)
		if len(raw) != 20 || bytes.Contains(row, []byte(enrol.Secret)) || bytes.Contains(row, raw) ||
			bytes.Contains(bytes.ToUpper(row), []byte(enrol.Secret)) {
			t.Fatalf("the row shows the seed: %q", row)
		}
		if !strings.HasPrefix(string(row), "v1.k1.") {
			t.Fatalf("row %q is not a sealed value under k1", row)
		}
		plain, _, err := ring.Open(string(row), "totp:"+id)
		if err != nil || string(plain) != enrol.Secret {
			t.Fatalf("the configured key does not open the row: %v", err)
		}
		other, _ := seal.NewRandomKeyring("k1")
		if _, _, err := other.Open(string(row), "totp:"+id); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("another key under the same id: %v, want seal.ErrOpen", err)
		}
		if _, _, err := ring.Open(string(row), "totp:"+uuid.NewString()); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("the row's secret as another factor's: %v, want seal.ErrOpen", err)
		}
	})
}

func TestPasskeysSQLite(t *testing.T) {
	storetest.RunPasskeys(t, func(t *testing.T) storetest.PasskeyStore {
		return openTest(t, "sqlite", sqliteTestDSN(t), true)
	})
}

func TestPasskeysMySQL(t *testing.T) {
	testenv.Need(t, mysqlEnv)
	storetest.RunPasskeys(t, func(t *testing.T) storetest.PasskeyStore {
		return openTest(t, "mysql", testenv.MySQLDSN(t), true)
	})
}
