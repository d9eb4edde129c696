package app

import (
	"log/slog"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
)

// UseLogger makes log the process's one logger: slog's default (which the
// registry's renewal loop and the stdlib log package then write through),
// go-micro's and the etcd client's (rpc.UseLogger), and the MySQL driver's
// (sqlstore.UseLogger). Without it those wrote plain text lines, which a
// pipeline parsing JSON drops — during an outage, exactly the lines an
// operator needs. Process-wide: call it once at start-up.
func UseLogger(log *slog.Logger) {
	slog.SetDefault(log)
	rpc.UseLogger(log)
	sqlstore.UseLogger(log)
}
