package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/usersvc/usersvc/internal/user"
)

// mysqlConnAPI is what the MySQL driver's connection implements and
// database/sql uses; lostConn wraps exactly that.
type mysqlConnAPI interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// lostConn marks a connection lost in the middle of a statement (the
// driver's ErrInvalidConn: reset, cut, server gone) as
// user.ErrDatabaseUnavailable, as unavailableConnector does for a failure
// to connect: it is the same outage met a moment later, and the client
// should get a 503 to retry, not a 500. Nothing else is touched: the
// driver's other errors (driver.ErrSkip, driver.ErrBadConn) steer
// database/sql, which compares them as they are.
type lostConn struct{ mysqlConnAPI }

func lost(err error) error {
	if errors.Is(err, mysql.ErrInvalidConn) {
		return fmt.Errorf("%w: %w", user.ErrDatabaseUnavailable, err)
	}
	return err
}

func (c lostConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.mysqlConnAPI.BeginTx(ctx, opts)
	return tx, lost(err)
}

func (c lostConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.mysqlConnAPI.PrepareContext(ctx, query)
	return st, lost(err)
}

func (c lostConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.mysqlConnAPI.ExecContext(ctx, query, args)
	return res, lost(err)
}

func (c lostConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.mysqlConnAPI.QueryContext(ctx, query, args)
	return rows, lost(err)
}

func (c lostConn) Ping(ctx context.Context) error { return lost(c.mysqlConnAPI.Ping(ctx)) }
