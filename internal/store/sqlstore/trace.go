package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// traceOptions instrument the pool with otelsql: one client span per
// statement, transaction begin and commit, named by the statement (its
// operation and table, "SELECT users", as the database semantic
// conventions name spans) and carrying the statement text with its ?
// placeholders; the arguments — emails, hashes — are never recorded.
// Only calls made inside a traced operation get a span: the relay's idle
// polls, metric scrapes and pings would otherwise each start a trace.
func traceOptions(system string) []otelsql.Option {
	return []otelsql.Option{
		otelsql.WithAttributes(attribute.String("db.system.name", system)),
		otelsql.WithSpanNameFormatter(spanName),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
	}
}

// spanName is "OPERATION table" for a statement, the method name
// (sql.conn.begin_tx, sql.tx.commit, …) otherwise.
func spanName(_ context.Context, method otelsql.Method, query string) string {
	if query == "" {
		return string(method)
	}
	return StatementName(query)
}

// StatementName names a statement by its operation and first table:
// "SELECT users", "INSERT outbox", "DELETE refresh_tokens".
func StatementName(query string) string {
	words := strings.Fields(query)
	if len(words) == 0 {
		return "SQL"
	}
	op := strings.ToUpper(words[0])
	after := map[string]string{"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "REPLACE": "INTO", "UPDATE": "UPDATE"}[op]
	if after == "" {
		return op
	}
	for i, w := range words {
		if strings.EqualFold(w, after) && i+1 < len(words) {
			if op == "UPDATE" && i != 0 {
				continue
			}
			table := strings.Trim(words[i+1], "`\"(;,")
			if table != "" {
				return op + " " + table
			}
		}
	}
	return op
}

// openTraced is sql.OpenDB over an instrumented connector.
func openTraced(c driver.Connector, system string) *sql.DB {
	return otelsql.OpenDB(c, traceOptions(system)...)
}
