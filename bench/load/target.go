package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// proc is one usersvc process of the target.
type proc struct {
	name string // e.g. "gateway-1", "api-1", "service-1", "dev"
	pid  int
}

// target is the system under test, already serving.
type target struct {
	url      string // base URL clients use (the gateway, or dev's listener)
	describe string // e.g. "distributed: 1 service, 1 API, 1 gateway, MariaDB 10.11"
	procs    []proc // the usersvc processes, for CPU accounting
	// admin creates an administrator with `usersvc admin create`.
	admin func(email, password string) string
}

// startTarget starts the target o.mode describes. Everything it starts is
// stopped by prog.Close (the cleanups run last-registered first: the
// usersvc processes, then etcd, then the database is dropped). A failure
// that prog.Fatalf does not handle itself is returned.
func startTarget(ctx context.Context, prog *cluster.Program, o *options, env map[string]string, leftover chan<- string) (*target, error) {
	if o.mode == "dev" {
		p, base := cluster.StartDev(prog, env)
		return &target{url: base, describe: "dev: one `usersvc dev` process (gateway, API, service in-process; SQLite)",
			procs: []proc{{p.Name(), p.Pid()}},
			admin: func(email, pw string) string { return p.Admin(prog, email, pw) }}, nil
	}

	dsn, version, err := createDatabase(ctx, prog, o.mysqlDSN, leftover)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	etcd, err := startEtcd(prog)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c := cluster.Start(prog, cluster.Options{Services: o.services, APIs: o.apis, MySQLDSN: dsn, Etcd: etcd, Env: env})
	t := &target{url: c.GatewayURL(),
		describe: fmt.Sprintf("distributed: %d service(s), %d API(s), 1 gateway; embedded etcd; MariaDB %s", o.services, o.apis, version),
		admin:    func(email, pw string) string { return c.Admin(prog, email, pw) }}
	for _, p := range append(append([]*cluster.Proc{c.Gateway()}, c.APIs()...), c.Services()...) {
		t.procs = append(t.procs, proc{p.Name(), p.Pid()})
	}
	return t, nil
}

// createDatabase creates usersvc_load_<random> on the server of base (which
// must be on loopback), registers its removal, and returns a DSN for it
// and the server's version.
func createDatabase(ctx context.Context, prog *cluster.Program, base string, leftover chan<- string) (dsn, version string, err error) {
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return "", "", fmt.Errorf("-mysql-dsn: %v", err)
	}
	if err := loopbackOnly(cfg.Net, cfg.Addr); err != nil {
		return "", "", fmt.Errorf("-mysql-dsn: %v", err)
	}
	cfg.DBName = ""
	cfg.Timeout = 10 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", "", fmt.Errorf("open MariaDB: %v", err)
	}
	prog.Cleanup(func() { _ = db.Close() })
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.QueryRowContext(cctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", "", fmt.Errorf("MariaDB at %s: %v", cfg.Addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "usersvc_load_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(cctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return "", "", fmt.Errorf("create database %s: %v", name, err)
	}
	leftover <- "database " + name
	prog.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			prog.Errorf("load: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN(), version, nil
}

// loopbackOnly refuses a MariaDB address off this machine: the load goes
// to loopback only.
func loopbackOnly(network, addr string) error {
	if network == "unix" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address", addr)
}

// startEtcd starts a single-member etcd embedded in this process and
// returns its client endpoint (host:port). prog.Close stops it; by then the
// usersvc processes, its only clients, are gone, so its Close does not wait
// for them. Only fatal logging: at error level etcd logs its own listeners
// closing at Close.
func startEtcd(prog *cluster.Program) (string, error) {
	stop, endpoint, err := etcdtest.Start(prog.TempDir, "fatal")
	if err != nil {
		return "", err
	}
	prog.Cleanup(stop)
	return endpoint, nil
}
