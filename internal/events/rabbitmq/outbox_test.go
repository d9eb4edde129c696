package rabbitmq_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// These tests run the user service's real outbox (SQLite) through the relay
// into the real RabbitMQ and out to a consumer.

const pw = "correct horse battery staple"

func allTypes() []string {
	keys := make([]string, len(user.EventTypes))
	for i, t := range user.EventTypes {
		keys[i] = string(t)
	}
	return keys
}

func startRelay(t *testing.T, st *stack.Stack, pub events.Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&events.Relay{Outbox: st.Store, Publisher: pub, Interval: 20 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestEveryEventTypeArrives: each kind of change produces its event on a
// queue bound to user.events, with the documented body, and the outbox is
// empty afterwards (so the reset token's only holder is the consumer).
func TestEveryEventTypeArrives(t *testing.T) {
	b, _ := newBroker(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	q := uniqueQueue(t)
	var mu sync.Mutex
	var got []events.Message
	startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: allTypes()}, func(_ context.Context, m events.Message) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	})
	startRelay(t, st, b)

	ctx := t.Context()
	svc := st.Service
	u, err := svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "ev@example.com", Password: pw, Name: "Ev"})
	if err != nil {
		t.Fatal(err)
	}
	self := user.Actor{ID: u.ID, Role: user.RoleUser}
	name, cur, next := "Eve", pw, "another fine passphrase"
	if _, err := svc.Update(ctx, self, u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, self, u.ID, user.UpdateInput{Password: &next, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	if err := svc.CreatePasswordReset(ctx, "ev@example.com"); err != nil {
		t.Fatal(err)
	}
	var token string
	testenv.Eventually(t, 10*time.Second, "the reset event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got {
			if e, err := user.ParseEvent(m.Body); err == nil && e.Reset != nil {
				token = e.Reset.Token
			}
		}
		return token != ""
	})
	if err := svc.ResetPassword(ctx, token, "the final passphrase here"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, self, u.ID); err != nil {
		t.Fatal(err)
	}
	want := []user.EventType{user.EventCreated, user.EventVerificationRequested, user.EventUpdated, user.EventUpdated, user.EventPasswordChanged,
		user.EventPasswordResetRequested, user.EventPasswordChanged, user.EventDeleted}
	testenv.Eventually(t, 10*time.Second, "every event", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
	mu.Lock()
	defer mu.Unlock()
	seen := map[user.EventType]int{}
	for _, m := range got {
		e, err := user.ParseEvent(m.Body)
		if err != nil {
			t.Fatalf("body %s: %v", m.Body, err)
		}
		seen[e.Type]++
		if m.RoutingKey != string(e.Type) || m.ID != e.ID || e.UserID != u.ID {
			t.Errorf("message %s/%s carries event %s/%s of user %s", m.ID, m.RoutingKey, e.ID, e.Type, e.UserID)
		}
		if strings.Contains(string(m.Body), "argon2") {
			t.Errorf("%s leaks a password hash", e.Type)
		}
		if (e.Reset != nil) != (e.Type == user.EventPasswordResetRequested) {
			t.Errorf("%s: reset payload present = %v", e.Type, e.Reset != nil)
		}
		if (e.Verification != nil) != (e.Type == user.EventVerificationRequested) {
			t.Errorf("%s: verification payload present = %v", e.Type, e.Verification != nil)
		}
		if (e.Type == user.EventCreated || e.Type == user.EventUpdated) && (e.User == nil || e.User.ID != u.ID) {
			t.Errorf("%s: user payload %+v", e.Type, e.User)
		}
	}
	for _, w := range want {
		if seen[w] == 0 {
			t.Errorf("no %s event arrived", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d messages, want %d", len(got), len(want))
	}
	// The relay deletes a row once the broker confirmed it, which may come
	// a moment after the consumer already has the message.
	testenv.Eventually(t, 10*time.Second, "an empty outbox after delivery", func() bool {
		n, err := st.Store.OutboxLen(ctx)
		return err == nil && n == 0
	})
}

// TestBrokerOutageLosesNothing: with RabbitMQ unreachable (its proxy cut), writes still
// succeed and their events wait in the outbox; when it returns all arrive,
// and the consumer's effect happens once per event.
func TestBrokerOutageLosesNothing(t *testing.T) {
	url, proxy := testenv.RabbitMQProxy(t)
	b, _ := newBrokerAt(t, url)
	st := stack.New(t, stack.Options{NoEvents: true})
	q := uniqueQueue(t)
	var mu sync.Mutex
	effects := map[string]int{}
	startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{string(user.EventCreated)}},
		func(ctx context.Context, m events.Message) error {
			_, err := st.Store.ProcessOnce(ctx, "outage-test", m.ID, func(context.Context) error {
				mu.Lock()
				effects[m.ID]++
				mu.Unlock()
				return nil
			})
			return err
		})
	startRelay(t, st, b)

	t.Cleanup(proxy.Up)
	proxy.Down()
	ctx := t.Context()
	for i := range 100 {
		if _, err := st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: fmt.Sprintf("o%03d@example.com", i), Password: pw, Name: "O"}); err != nil {
			t.Fatalf("write %d during the outage: %v", i, err)
		}
	}
	// Each sign-up writes two events: user.created (consumed here) and its
	// verification mail's.
	pending, err := st.Store.OutboxLen(ctx)
	if err != nil || pending != 200 {
		t.Fatalf("outbox holds %d events during the outage (%v), want 200", pending, err)
	}
	proxy.Up()
	testenv.Eventually(t, 60*time.Second, "all 100 events", func() bool { mu.Lock(); defer mu.Unlock(); return len(effects) == 100 })
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	mu.Lock()
	defer mu.Unlock()
	for id, n := range effects {
		if n != 1 {
			t.Errorf("event %s took effect %d times", id, n)
		}
	}
	if n, _ := st.Store.OutboxLen(ctx); n != 0 {
		t.Errorf("outbox still holds %d events", n)
	}
}
