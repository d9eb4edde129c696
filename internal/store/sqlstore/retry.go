package sqlstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usersvc/usersvc/internal/telemetry"
)

// A transaction that lost a lock conflict is run again from the start, up
// to txAttempts times in all, after a random pause of up to a doubling
// bound (full jitter, so the losers of one conflict do not collide again in
// step). Five attempts within about half a second outlast any conflict
// between two ordinary transactions; what still fails is not transient.
const (
	txAttempts   = 5
	txBackoff    = 5 * time.Millisecond
	txBackoffMax = 200 * time.Millisecond
)

// MySQL/MariaDB error numbers of a transaction that lost a conflict and may
// simply be run again.
const (
	erLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT
	erLockDeadlock    = 1213 // ER_LOCK_DEADLOCK, the transaction was rolled back
	erCheckRead       = 1020 // ER_CHECKREAD, MariaDB's snapshot-isolation conflict
)

// mysqlTransient names the conflict err is (telemetry.TxDeadlock,
// TxLockWaitTimeout, TxSerialization), "" when err is not one.
func mysqlTransient(err error) string {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return ""
	}
	switch me.Number {
	case erLockDeadlock:
		return telemetry.TxDeadlock
	case erLockWaitTimeout:
		return telemetry.TxLockWaitTimeout
	case erCheckRead:
		return telemetry.TxSerialization
	}
	return ""
}

// sqliteTransient is telemetry.TxBusy when err is SQLITE_BUSY (any extended code):
// the write lock stayed taken past the busy timeout.
func sqliteTransient(err error) string {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY {
		return telemetry.TxBusy
	}
	return ""
}

// retryTx runs tx until it succeeds, fails with an error that is not a
// transient conflict (as transient classifies it), runs txAttempts times,
// or ctx ends; it returns tx's last error.
func retryTx(ctx context.Context, transient func(error) string, tx func() error) error {
	bound := txBackoff
	for attempt := 1; ; attempt++ {
		err := tx()
		reason := ""
		if err != nil {
			reason = transient(err)
		}
		if reason == "" {
			return err
		}
		if attempt == txAttempts {
			telemetry.DBTxRetries.WithLabelValues(reason, telemetry.TxGaveUp).Inc()
			return err
		}
		telemetry.DBTxRetries.WithLabelValues(reason, telemetry.TxRetried).Inc()
		t := time.NewTimer(rand.N(bound) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		bound = min(2*bound, txBackoffMax)
	}
}
