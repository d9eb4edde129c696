package worker_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/bleveindex"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

const pw = "correct horse battery staple"

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// drainOutbox takes every pending event out of the stack's real outbox, as
// the relay would publish them.
func drainOutbox(t *testing.T, ctx context.Context, st *stack.Stack) []events.Message {
	t.Helper()
	var out []events.Message
	for {
		n, err := st.Store.DrainOutbox(ctx, 100, func(_ context.Context, rows []events.Message) error {
			out = append(out, rows...)
			return nil
		})
		if err != nil {
			t.Fatalf("DrainOutbox: %v", err)
		}
		if n == 0 {
			return out
		}
	}
}

// eventOf returns the only drained event of type typ.
func eventOf(t *testing.T, msgs []events.Message, typ user.EventType) (events.Message, user.Event) {
	t.Helper()
	var found []events.Message
	for _, m := range msgs {
		if m.RoutingKey == string(typ) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("outbox held %d %s events, want 1", len(found), typ)
	}
	e, err := user.ParseEvent(found[0].Body)
	if err != nil {
		t.Fatalf("parse %s event: %v", typ, err)
	}
	return found[0], e
}

// message encodes e as the relay would publish it.
func message(t *testing.T, e user.Event) events.Message {
	t.Helper()
	body, err := e.Body()
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	return events.Message{ID: e.ID, RoutingKey: string(e.Type), Body: body}
}

// openIndex opens a real embedded index in a temp dir, closed at the end.
func openIndex(t *testing.T) *bleveindex.Index {
	t.Helper()
	idx, err := bleveindex.Open(filepath.Join(t.TempDir(), "search"))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

// find returns the IDs matching text (every page), through the Searcher
// adapter the service uses.
func find(t *testing.T, ctx context.Context, idx search.Index, text string) []string {
	t.Helper()
	var ids []string
	after := ""
	for range 100 {
		r, err := search.Searcher{Index: idx}.SearchUsers(ctx, user.SearchQuery{Text: text, Limit: search.MaxLimit, After: after})
		if err != nil {
			t.Fatalf("search %q: %v", text, err)
		}
		ids = append(ids, r.IDs...)
		if r.Next == "" {
			slices.Sort(ids)
			return ids
		}
		after = r.Next
	}
	t.Fatalf("search %q: more than 100 pages", text)
	return nil
}
