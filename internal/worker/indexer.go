package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// IndexerSubscription is the search indexer's queue.
var IndexerSubscription = events.Subscription{
	Queue:       "usersvc.search",
	RoutingKeys: []string{string(user.EventCreated), string(user.EventUpdated), string(user.EventDeleted)},
	MaxAttempts: 10,
	Concurrency: 4,
}

// Indexer keeps the search index current. It is idempotent and order-
// insensitive without bookkeeping: every write carries the event's time as
// its version and the index keeps the newest, so a redelivered or late
// event changes nothing.
func Indexer(idx search.Index) events.Handler {
	telemetry.SearchIndexWrites.WithLabelValues("ok")
	telemetry.SearchIndexWrites.WithLabelValues("failed")
	return func(ctx context.Context, m events.Message) error {
		e, err := user.ParseEvent(m.Body)
		if err != nil {
			return events.Permanent(err)
		}
		if e.Type == user.EventDeleted {
			err = idx.Delete(ctx, e.UserID, search.EventVersion(e))
		} else if doc, ok := search.DocFromEvent(e); ok {
			err = idx.Upsert(ctx, doc)
		} else {
			return nil
		}
		telemetry.SearchIndexWrites.WithLabelValues(outcome(err)).Inc()
		if errors.Is(err, search.ErrInvalidDoc) {
			return events.Permanent(err)
		}
		if err != nil {
			return fmt.Errorf("indexer: event %s: %w", e.ID, err)
		}
		return nil
	}
}

// Reindex rebuilds the index from the store, for a new or damaged index:
// every user is upserted with its updated_at as version, so events newer
// than the snapshot still win. It returns how many users it indexed.
func Reindex(ctx context.Context, st user.Repo, idx search.Index) (int, error) {
	n, after := 0, ""
	for {
		users, _, err := st.ListUsers(ctx, user.ListQuery{AfterID: after, Limit: 500, SkipTotal: true})
		if err != nil {
			return n, fmt.Errorf("reindex: list users: %w", err)
		}
		if len(users) == 0 {
			return n, nil
		}
		docs := make([]search.Doc, len(users))
		for i, u := range users {
			docs[i] = search.Doc{Snapshot: u.Snapshot(), Version: u.UpdatedAt.UnixMicro()}
		}
		if err := idx.Upsert(ctx, docs...); err != nil {
			return n, fmt.Errorf("reindex: upsert: %w", err)
		}
		n += len(users)
		after = users[len(users)-1].ID
	}
}
