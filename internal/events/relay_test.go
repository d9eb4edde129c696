package events_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// The relay runs here against the real outbox: the user service on SQLite
// (testenv/stack without its own relay) writes events as it changes users.
// Only the broker is a fake, of our own Publisher interface.

const pw = "correct horse battery staple"

// change is what the test expects to see published for one change.
type change struct {
	typ    user.EventType
	userID string
}

// makeChanges runs a few changes through the service and returns the events
// they must produce, in commit order.
func makeChanges(t *testing.T, ctx context.Context, st *stack.Stack) []change {
	t.Helper()
	svc := st.Service
	a, err := svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "ada@example.com", Password: pw, Name: "Ada"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	b, err := svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "bob@example.com", Password: pw, Name: "Bob"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	name := "Ada Lovelace"
	if _, err := svc.Update(ctx, user.SystemActor, a.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := svc.CreatePasswordReset(ctx, "ada@example.com"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if err := svc.Delete(ctx, user.SystemActor, b.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// Outbox order is event ID order: a sign-up's user.created is made
	// before the event of its verification mail.
	return []change{
		{user.EventCreated, a.ID},
		{user.EventVerificationRequested, a.ID},
		{user.EventCreated, b.ID},
		{user.EventVerificationRequested, b.ID},
		{user.EventUpdated, a.ID},
		{user.EventPasswordResetRequested, a.ID},
		{user.EventDeleted, b.ID},
		// The deletion tells other services to refuse b's tokens, in the
		// same transaction and outbox.
		{user.EventType(auth.RevocationRoutingKey), b.ID},
	}
}

// fakeBroker is a Publisher that fails its first failFirst calls and records
// the messages of the calls after that. Each of the first gated calls
// announces itself on step and waits for resume, so the test can look at the
// outbox between calls.
type fakeBroker struct {
	failFirst int
	gated     int
	step      chan int
	resume    chan struct{}

	mu       sync.Mutex
	calls    int
	attempts [][]string // IDs offered by each call, failed or not
	got      []events.Message
}

var errBrokerDown = errors.New("broker unreachable")

func (f *fakeBroker) Publish(ctx context.Context, msgs []events.Message) error {
	f.mu.Lock()
	f.calls++
	n := f.calls
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	f.attempts = append(f.attempts, ids)
	f.mu.Unlock()
	if n <= f.gated {
		select {
		case f.step <- n:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-f.resume:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if n <= f.failFirst {
		return fmt.Errorf("publish: %w", errBrokerDown)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, slices.Clone(msgs)...)
	return nil
}

func (f *fakeBroker) published() []events.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *fakeBroker) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// runRelay starts r until stop is called or the test ends; stop fails the
// test unless Run returns nil promptly.
func runRelay(t *testing.T, r *events.Relay) (stop func()) {
	t.Helper()
	stop, _ = testenv.Background(t, "Relay.Run", 5*time.Second, r.Run)
	return stop
}

func outboxLen(t *testing.T, ctx context.Context, st *stack.Stack) int {
	t.Helper()
	n, err := st.Store.OutboxLen(ctx)
	if err != nil {
		t.Fatalf("OutboxLen: %v", err)
	}
	return n
}

// checkPublished asserts that msgs are exactly the events of want, once
// each, in outbox (commit) order, and well formed.
func checkPublished(t *testing.T, msgs []events.Message, want []change) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Fatalf("published %d messages, want %d: %v", len(msgs), len(want), ids(msgs))
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		if seen[m.ID] {
			t.Errorf("event %s published twice", m.ID)
		}
		seen[m.ID] = true
		if m.RoutingKey == auth.RevocationRoutingKey {
			r, err := auth.ParseRevocation(m.Body)
			if err != nil || r.ID != m.ID || r.Subject != want[i].userID || want[i].typ != auth.RevocationRoutingKey {
				t.Errorf("message %d: revocation %+v (%v), want %s of %s", i, r, err, want[i].typ, want[i].userID)
			}
			continue
		}
		e, err := user.ParseEvent(m.Body)
		if err != nil {
			t.Errorf("message %d: body does not parse: %v", i, err)
			continue
		}
		if e.ID != m.ID || string(e.Type) != m.RoutingKey {
			t.Errorf("message %d: ID %q / routing key %q, body has id %q / type %q", i, m.ID, m.RoutingKey, e.ID, e.Type)
		}
		if e.Type != want[i].typ || e.UserID != want[i].userID {
			t.Errorf("message %d is %s of %s, want %s of %s (outbox order)", i, e.Type, e.UserID, want[i].typ, want[i].userID)
		}
		if e.Type == user.EventPasswordResetRequested && (e.Reset == nil || e.Reset.Token == "") {
			t.Errorf("message %d: reset event without its token", i)
		}
	}
}

func ids(msgs []events.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// TestRelayKeepsEventsWhileBrokerFails: while the broker fails, every event
// stays in the outbox and each retry offers the same batch; once it accepts,
// each event is published exactly once, in outbox order, and the outbox is
// empty.
func TestRelayKeepsEventsWhileBrokerFails(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	want := makeChanges(t, ctx, st)
	if n := outboxLen(t, ctx, st); n != len(want) {
		t.Fatalf("outbox holds %d events before the relay runs, want %d", n, len(want))
	}

	const failures = 3
	broker := &fakeBroker{failFirst: failures, gated: failures + 1, step: make(chan int), resume: make(chan struct{})}
	runRelay(t, &events.Relay{Outbox: st.Store, Publisher: broker, Log: quietLog(), Interval: 5 * time.Millisecond})

	for call := 1; call <= failures+1; call++ {
		var n int
		select {
		case n = <-broker.step:
		case <-time.After(10 * time.Second):
			t.Fatalf("relay did not call Publish a %d. time", call)
		}
		if n != call {
			t.Fatalf("publish call %d announced as %d", call, n)
		}
		// From the second call on, the previous call failed: its events
		// must still be in the outbox.
		if got := outboxLen(t, ctx, st); got != len(want) {
			t.Fatalf("outbox holds %d events during publish call %d (after %d failures), want %d",
				got, call, call-1, len(want))
		}
		if got := broker.published(); len(got) != 0 {
			t.Fatalf("messages recorded before the broker accepted any: %v", ids(got))
		}
		broker.resume <- struct{}{}
	}

	testenv.Eventually(t, 10*time.Second, "the outbox to empty", func() bool { return outboxLen(t, ctx, st) == 0 })
	// A few more polls: an empty outbox must not cause further publishes
	// (or republish anything).
	time.Sleep(50 * time.Millisecond)
	msgs := broker.published()
	checkPublished(t, msgs, want)

	broker.mu.Lock()
	attempts := slices.Clone(broker.attempts)
	broker.mu.Unlock()
	if len(attempts) != failures+1 {
		t.Errorf("Publish was called %d times, want %d (%d failures, then one batch)", len(attempts), failures+1, failures)
	}
	for i, a := range attempts {
		if !slices.Equal(a, ids(msgs)) {
			t.Errorf("publish call %d offered %v, want the whole outbox %v", i+1, a, ids(msgs))
		}
	}
}

// TestRelayDrainsFullBatchesWithoutWaiting: with more events than Batch the
// relay publishes batch after batch, in order, without waiting Interval
// between full ones (Interval here is far longer than the test).
func TestRelayDrainsFullBatchesWithoutWaiting(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	want := makeChanges(t, ctx, st)
	broker := &fakeBroker{}
	stop := runRelay(t, &events.Relay{Outbox: st.Store, Publisher: broker, Log: quietLog(), Interval: time.Hour, Batch: 3})

	testenv.Eventually(t, 10*time.Second, "the outbox to empty", func() bool { return outboxLen(t, ctx, st) == 0 })
	checkPublished(t, broker.published(), want)
	broker.mu.Lock()
	var sizes []int
	for _, a := range broker.attempts {
		sizes = append(sizes, len(a))
	}
	broker.mu.Unlock()
	if !slices.Equal(sizes, []int{3, 3, 2}) {
		t.Errorf("batch sizes %v, want [3 3 2] (%d events)", sizes, len(want))
	}
	// The relay now sleeps its hour; ending the context must end Run at
	// once (stop fails the test otherwise).
	stop()
}

// TestRelayRunReturnsWhenContextEnds: Run returns nil when its context ends,
// whether it is idle or backing off after a failed publish.
func TestRelayRunReturnsWhenContextEnds(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		st := stack.New(t, stack.Options{NoEvents: true})
		broker := &fakeBroker{}
		stop := runRelay(t, &events.Relay{Outbox: st.Store, Publisher: broker, Log: quietLog(), Interval: time.Hour})
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Run took %v to return", d)
		}
		if n := broker.callCount(); n != 0 {
			t.Errorf("Publish called %d times on an empty outbox", n)
		}
	})
	t.Run("backing off", func(t *testing.T) {
		ctx := testenv.Context(t)
		st := stack.New(t, stack.Options{NoEvents: true})
		want := makeChanges(t, ctx, st)
		broker := &fakeBroker{failFirst: 1 << 30}
		// After the first failure the relay waits 2×Interval = 2s.
		stop := runRelay(t, &events.Relay{Outbox: st.Store, Publisher: broker, Log: quietLog(), Interval: time.Second})
		testenv.Eventually(t, 5*time.Second, "the first failed publish", func() bool { return broker.callCount() >= 1 })
		start := time.Now()
		stop()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Run took %v to return while backing off", d)
		}
		if n := outboxLen(t, ctx, st); n != len(want) {
			t.Errorf("outbox holds %d events after failed publishes, want %d", n, len(want))
		}
	})
}
