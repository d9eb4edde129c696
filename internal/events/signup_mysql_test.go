package events_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// TestSignupsBesideRelayMySQL: concurrent sign-ups (a user row and two
// outbox events each) on MariaDB while the relay publishes and deletes
// batches as fast as it can. The sign-up's INSERTs and the relay's DELETE
// once deadlocked (error 1213, a 500 to the client) about once in 70
// sign-ups; none may fail now, and every event is published.
func TestSignupsBesideRelayMySQL(t *testing.T) {
	dsn := testenv.MySQLDSN(t)
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{MySQLDSN: dsn, NoEvents: true})
	broker := &fakeBroker{}
	stop := runRelay(t, &events.Relay{Outbox: st.Store, Publisher: broker, Log: quietLog(), Interval: time.Millisecond})

	const clients, perClient = 16, 40
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		first  sync.Once
	)
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				in := user.CreateInput{Email: fmt.Sprintf("u%d-%d@example.com", c, i), Password: pw, Name: "Signup"}
				if _, err := st.Service.Create(ctx, user.Actor{}, in); err != nil {
					failed.Add(1)
					first.Do(func() { t.Errorf("sign-up failed: %v", err) })
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d clients: %d of %d sign-ups failed in %v", clients, failed.Load(), clients*perClient, time.Since(start).Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d sign-ups failed", n, clients*perClient)
	}
	// Two events per sign-up: user.created and the verification mail.
	want := 2 * (clients*perClient - int(failed.Load()))
	testenv.Eventually(t, 20*time.Second, "every event to be published", func() bool {
		return len(broker.published()) >= want && outboxLen(t, ctx, st) == 0
	})
	stop()
	if got := len(broker.published()); got != want {
		t.Errorf("published %d events, want %d", got, want)
	}
}
