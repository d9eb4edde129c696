package revocations_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/revocations"
)

// source is the catch-up side: what the user service's store holds.
type source struct {
	mu    sync.Mutex
	revs  []auth.Revocation
	calls int
}

func (s *source) add(r auth.Revocation) { s.mu.Lock(); defer s.mu.Unlock(); s.revs = append(s.revs, r) }

func (s *source) RevocationsSince(_ context.Context, since time.Time) ([]auth.Revocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var out []auth.Revocation
	for _, r := range s.revs {
		if !r.At.Before(since) {
			out = append(out, r)
		}
	}
	return out, nil
}

// broker is the test's own exchange on the shared RabbitMQ (deleted at the
// end: testenv.RabbitMQExchange), and a publisher connection that bypasses the proxy.
type broker struct {
	exchange string
	ch       *amqp.Channel
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	conn, err := amqp.Dial(testenv.RabbitMQURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{exchange: testenv.RabbitMQExchange(t, testenv.RabbitMQURL(t), "test.revocations."), ch: ch}
	if err := ch.ExchangeDeclare(b.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return b
}

func (b *broker) publish(t *testing.T, r auth.Revocation) {
	t.Helper()
	body, _ := json.Marshal(r)
	if err := b.ch.PublishWithContext(t.Context(), b.exchange, auth.RevocationRoutingKey, false, false,
		amqp.Publishing{ContentType: "application/json", Body: body}); err != nil {
		t.Fatal(err)
	}
}

func revokeSession(sid string) auth.Revocation {
	now := time.Now()
	return auth.Revocation{ID: sid, Reason: auth.ReasonLogout, At: now, Until: now.Add(16 * time.Minute), SessionID: sid}
}

func principal(sid string) *auth.Principal {
	return &auth.Principal{Kind: auth.KindUser, ID: "u-" + sid, SessionID: sid, TokenID: "jti-" + sid, IssuedAt: time.Now()}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestFeedPushCutAndCatchUp runs the feed against the real broker: a
// published revocation is refused at once; with the broker cut the feed
// fails closed; what was revoked during the cut is caught up on reconnect.
func TestFeedPushCutAndCatchUp(t *testing.T) {
	b := newBroker(t)
	url, proxy := testenv.RabbitMQProxy(t)
	src := &source{}
	src.add(revokeSession("before-start"))
	var states []revocations.State
	var statesMu sync.Mutex
	f, err := revocations.New(revocations.Config{URL: url, Exchange: b.exchange, CatchUp: src, Logger: quiet(),
		Retry: 50 * time.Millisecond, OnState: func(s revocations.State) {
			statesMu.Lock()
			states = append(states, s)
			statesMu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(principal("fresh")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("before start: err = %v, want ErrUnavailable (fail closed)", err)
	}
	testenv.Background(t, "feed", 5*time.Second, f.Run)
	live := func() bool { s, _ := f.State(); return s == revocations.StateLive }
	testenv.Eventually(t, 10*time.Second, "the feed live", live)
	if err := f.Check(principal("before-start")); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("revoked before start: err = %v, want ErrRevoked (caught up)", err)
	}
	if err := f.Check(principal("fresh")); err != nil {
		t.Fatalf("fresh token: %v", err)
	}

	start := time.Now()
	b.publish(t, revokeSession("pushed"))
	testenv.Eventually(t, 5*time.Second, "the pushed revocation applied", func() bool {
		return errors.Is(f.Check(principal("pushed")), auth.ErrRevoked)
	})
	t.Logf("push to refusal: %v", time.Since(start))

	proxy.Down()
	testenv.Eventually(t, 10*time.Second, "the feed down", func() bool { return !live() })
	if err := f.Check(principal("fresh")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("while cut: err = %v, want ErrUnavailable", err)
	}
	if err := f.Check(principal("pushed")); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("known revoked while cut: err = %v, want ErrRevoked", err)
	}
	// Revoked during the cut: the event reaches no queue of ours.
	during := revokeSession("during-cut")
	src.add(during)
	b.publish(t, during)
	proxy.Up()
	testenv.Eventually(t, 10*time.Second, "the feed live again", live)
	if err := f.Check(principal("during-cut")); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("revoked during the cut: err = %v, want ErrRevoked (caught up)", err)
	}
	statesMu.Lock()
	defer statesMu.Unlock()
	if len(states) < 3 || states[0] != revocations.StateLive || states[1] != revocations.StateDown {
		t.Fatalf("states = %v, want live, down, ..., live", states)
	}
}

// TestFeedFailOpen: configured to fail open, the feed honours tokens for
// at most FailOpen after losing the stream, counting each.
func TestFeedFailOpen(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	var blind atomic.Int64
	f, err := revocations.New(revocations.Config{URL: "amqp://127.0.0.1:1/", CatchUp: &source{}, FailOpen: 5 * time.Second,
		Now: clk.Now, Logger: quiet(), OnFailOpen: func() { blind.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	f.Set().Apply(auth.Revocation{ID: "1", At: clk.Now(), Until: clk.Now().Add(time.Hour), SessionID: "gone"})
	if err := f.Check(principal("fresh")); err != nil || blind.Load() != 1 {
		t.Fatalf("within the bound: err = %v, blind = %d", err, blind.Load())
	}
	if err := f.Check(principal("gone")); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("a known revocation fails open: %v", err)
	}
	clk.Add(5*time.Second + time.Millisecond)
	if err := f.Check(principal("fresh")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("past the bound: err = %v, want ErrUnavailable", err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []revocations.Config{{}, {URL: "amqp://x"}, {URL: "amqp://x", CatchUp: &source{}, FailOpen: -1}} {
		if _, err := revocations.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
