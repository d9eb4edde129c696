package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/user"
)

// AppendEvent writes e to the outbox (inside the caller's transaction when
// called through Atomic).
func (r repo) AppendEvent(ctx context.Context, e user.Event) error {
	body, err := e.Body()
	if err != nil {
		return fmt.Errorf("sqlstore: encode event: %w", err)
	}
	_, err = r.q.ExecContext(ctx, `INSERT INTO outbox (id, type, user_id, occurred_at, body, trace_parent) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, string(e.Type), e.UserID, r.d.timeArg(e.OccurredAt), string(body), traceParent(ctx))
	if err != nil {
		return fmt.Errorf("sqlstore: append event: %w", err)
	}
	return nil
}

// traceParent is ctx's span as a W3C traceparent, "" without a span: the
// event's row keeps it, so the relay's publish and the consumer's work join
// the trace of the request that wrote the event.
func traceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// DrainOutbox hands up to limit of the oldest pending events to publish, as
// the broker messages they become (routing key = event type), and
// deletes them once publish returns nil, all in one transaction. The rows
// are read with FOR UPDATE SKIP LOCKED on MySQL/MariaDB, so several relays
// (one per service instance) take disjoint batches and never publish one
// event twice while they run normally; SQLite's immediate transactions give
// one relay at a time the whole table. If publish fails, or the process dies
// before the commit, the rows stay and are published again later: delivery
// is at least once, and consumers are idempotent.
func (s *Store) DrainOutbox(ctx context.Context, limit int, publish func(context.Context, []events.Message) error) (int, error) {
	n := 0
	err := s.repo.atomicOpts(ctx, s.d.drainTxOptions, func(r repo) error {
		q := `SELECT id, type, body, trace_parent FROM outbox ORDER BY id LIMIT ?`
		if r.d.name == "mysql" {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := r.q.QueryContext(ctx, q, limit)
		if err != nil {
			return fmt.Errorf("sqlstore: read outbox: %w", err)
		}
		var msgs []events.Message
		for rows.Next() {
			var m events.Message
			var body, tp string
			if err := rows.Scan(&m.ID, &m.RoutingKey, &body, &tp); err != nil {
				rows.Close()
				return fmt.Errorf("sqlstore: read outbox: %w", err)
			}
			m.Body = []byte(body)
			if tp != "" {
				m.Headers = map[string]string{"traceparent": tp}
			}
			msgs = append(msgs, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlstore: read outbox: %w", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := publish(ctx, msgs); err != nil {
			return err
		}
		ids := make([]any, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
		if _, err := r.q.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (`+marks+`)`, ids...); err != nil {
			return fmt.Errorf("sqlstore: delete published events: %w", err)
		}
		n = len(msgs)
		return nil
	})
	return n, err
}

// OutboxLen counts pending events, for metrics and tests.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	var n int
	if err := s.repo.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count outbox: %w", err)
	}
	return n, nil
}

// OutboxOldest is when the oldest pending event occurred, the zero time
// when the outbox is empty: its age is how late the events are.
func (s *Store) OutboxOldest(ctx context.Context) (time.Time, error) {
	var t *time.Time
	if err := s.repo.q.QueryRowContext(ctx, `SELECT MIN(occurred_at) FROM outbox`).Scan(nullTimeDest{&t}); err != nil {
		return time.Time{}, fmt.Errorf("sqlstore: oldest outbox event: %w", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

// ProcessOnce runs fn for (consumer, eventID) unless it already ran to
// completion: the processed mark and fn's effects commit together, and a
// failing fn leaves no mark, so a redelivered event is retried until it
// succeeds once and ignored after that. fn runs while the mark's row is
// locked, so two deliveries of one event cannot both run it.
func (s *Store) ProcessOnce(ctx context.Context, consumer, eventID string, fn func(context.Context) error) (ran bool, err error) {
	err = s.repo.atomic(ctx, func(r repo) error {
		_, err := r.q.ExecContext(ctx, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)`,
			consumer, eventID, r.d.timeArg(time.Now()))
		if r.d.isDuplicate(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlstore: mark event processed: %w", err)
		}
		if err := fn(ctx); err != nil {
			return err
		}
		ran = true
		return nil
	})
	return ran, err
}
