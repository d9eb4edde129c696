// Package e2e holds the end-to-end tests of usersvc: the real binary, run
// as separate processes by internal/testenv/cluster, against embedded etcd
// and a fresh MariaDB database (or, in dev mode, SQLite), driven only
// through HTTP and checked against api/openapi.yaml. It has no code of its
// own outside the tests.
package e2e
