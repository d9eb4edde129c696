// Package testenv gives tests the real servers they run against (MariaDB,
// Redis, RabbitMQ, etcd) and makes a missing server loud: a test that needs
// one skips when its setting is absent, and fails instead when
// USERSVC_TEST_REQUIRE_ALL=1, which the project's test command sets, so a CI
// run can never pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Need returns the value of the environment variable or skips (fails under
// USERSVC_TEST_REQUIRE_ALL=1) the test when it is empty.
func Need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("USERSVC_TEST_REQUIRE_ALL") == "1" {
			t.Fatalf("%s is not set but USERSVC_TEST_REQUIRE_ALL=1: run the tests with `make test`", env)
		}
		t.Skipf("%s is not set; `make test` sets it and starts the server", env)
	}
	return v
}

// MySQLDSN creates a fresh database on the server of USERSVC_TEST_MYSQL_DSN
// (a DSN without a database name, e.g. "usersvc_test:usersvc_test@tcp(127.0.0.1:3306)/"),
// drops it when the test ends, and returns a DSN for it.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := Need(t, "USERSVC_TEST_MYSQL_DSN")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("USERSVC_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	name := "usersvc_test_" + RandomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// RandomHex returns 2n random hex characters, for unique names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}

// MySQLBehindProxy is MySQLDSN with the connection going through a Proxy,
// for tests that cut the database: the DSN and the proxy to cut.
func MySQLBehindProxy(t testing.TB) (dsn string, p *Proxy) {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	p = NewProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	return cfg.FormatDSN(), p
}
