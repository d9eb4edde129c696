package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// UseLogger sends the MySQL driver's own lines ("closing bad idle
// connection: EOF", "busy buffer") through log, so they are JSON like every
// other line instead of the driver's plain "[mysql] 2026/…" to stderr. The
// driver keeps its logger in a package variable read when a DSN is parsed:
// call it once at start-up, before Open.
func UseLogger(log *slog.Logger) {
	_ = mysql.SetLogger(driverLogger{log.With("log.logger", "mysql")}) // fails only for nil
}

// driverLogger adapts slog to the driver's Logger. The driver logs only
// what it calls critical: connection faults it then works around, so warn.
type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) {
	d.log.Log(context.Background(), slog.LevelWarn, strings.TrimSpace(fmt.Sprint(v...)))
}
