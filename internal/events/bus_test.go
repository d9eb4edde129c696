package events

import (
	"context"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// These tests drive the in-process Bus through its public methods only; they
// live in package events for busQueueLen, so the full-queue test follows the
// real capacity.

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// consume declares sub's queue (as the service does before it starts
// publishing; Consume itself declares it only once its goroutine runs) and
// runs b.Consume(sub, h) in the background until stop is called or the test
// ends; stop waits for Consume to return and fails the test if it does not
// return promptly or returns an error.
func consume(t *testing.T, b *Bus, sub Subscription, h Handler) (stop func()) {
	t.Helper()
	b.Declare(sub)
	stop, _ = testenv.Background(t, "Consume("+sub.Queue+")", 5*time.Second,
		func(ctx context.Context) error { return b.Consume(ctx, sub, h) })
	return stop
}

// recv receives from ch or fails the test after timeout.
func recv[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}

// recorder is a handler that remembers the IDs it was given, in order, and
// closes done when it sees the message with ID endID.
type recorder struct {
	endID string
	done  chan struct{}
	mu    sync.Mutex
	ids   []string
	msgs  []Message
	ended bool
}

func newRecorder(endID string) *recorder { return &recorder{endID: endID, done: make(chan struct{})} }

func (r *recorder) handle(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, m.ID)
	r.msgs = append(r.msgs, m)
	if m.ID == r.endID && !r.ended {
		r.ended = true
		close(r.done)
	}
	return nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func TestSubscriptionDefaults(t *testing.T) {
	got := Subscription{Queue: "q"}.Defaults()
	want := Subscription{Queue: "q", MaxAttempts: 5, Backoff: time.Second, MaxBackoff: time.Minute, Concurrency: 1}
	if !equalSub(got, want) {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
	set := Subscription{Queue: "q", MaxAttempts: 2, Backoff: 3 * time.Millisecond, MaxBackoff: 7 * time.Millisecond, Concurrency: 9}
	if got := set.Defaults(); !equalSub(got, set) {
		t.Errorf("Defaults() changed set fields: %+v, want %+v", got, set)
	}
	neg := Subscription{MaxAttempts: -1, Backoff: -1, MaxBackoff: -1, Concurrency: -1}.Defaults()
	if neg.MaxAttempts != 5 || neg.Backoff != time.Second || neg.MaxBackoff != time.Minute || neg.Concurrency != 1 {
		t.Errorf("negative fields not defaulted: %+v", neg)
	}
}

func equalSub(a, b Subscription) bool {
	return a.Queue == b.Queue && slices.Equal(a.RoutingKeys, b.RoutingKeys) && a.MaxAttempts == b.MaxAttempts &&
		a.Backoff == b.Backoff && a.MaxBackoff == b.MaxBackoff && a.Concurrency == b.Concurrency
}

func TestSubscriptionDelay(t *testing.T) {
	s := Subscription{}.Defaults() // 1s doubling up to 1m
	for attempt, want := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second,
		7: time.Minute, 8: time.Minute, 1000: time.Minute,
	} {
		if got := s.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	s = Subscription{Backoff: 10 * time.Millisecond, MaxBackoff: 25 * time.Millisecond}
	for attempt, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 25 * time.Millisecond} {
		if got := s.Delay(attempt); got != want {
			t.Errorf("Delay(%d) with 10ms..25ms = %v, want %v", attempt, got, want)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad body")
	p := Permanent(base)
	if !IsPermanent(p) {
		t.Error("IsPermanent(Permanent(err)) = false")
	}
	if !errors.Is(p, base) {
		t.Error("Permanent(err) does not unwrap to err")
	}
	if p.Error() != "bad body" {
		t.Errorf("Permanent(err).Error() = %q, want the wrapped message", p.Error())
	}
	if !IsPermanent(fmt.Errorf("handler: %w", p)) {
		t.Error("IsPermanent does not see through wrapping")
	}
	if IsPermanent(base) || IsPermanent(nil) || IsPermanent(context.Canceled) {
		t.Error("IsPermanent true for an ordinary error")
	}
}

// TestBusRoutesByExactKey: a message reaches every queue bound to its routing
// key and no other; keys are compared exactly (no topic wildcards, no case
// folding, no prefixes).
func TestBusRoutesByExactKey(t *testing.T) {
	ctx := testenv.Context(t)
	b := NewBus(quietLog())
	subs := map[string]Subscription{
		"created":     {Queue: "q.created", RoutingKeys: []string{"user.created", "end.created"}},
		"created+upd": {Queue: "q.created-updated", RoutingKeys: []string{"user.created", "user.updated", "end.created-updated"}},
		"deleted":     {Queue: "q.deleted", RoutingKeys: []string{"user.deleted", "end.deleted"}},
		"unused":      {Queue: "q.unused", RoutingKeys: []string{"user.password_changed", "end.unused"}},
	}
	for _, s := range subs {
		b.Declare(s)
	}
	msgs := []Message{
		{ID: "1", RoutingKey: "user.created", Body: []byte(`{"n":1}`)},
		{ID: "2", RoutingKey: "user.updated", Body: []byte(`{"n":2}`)},
		{ID: "3", RoutingKey: "user.deleted", Body: []byte(`{"n":3}`)},
		{ID: "4", RoutingKey: "user"},
		{ID: "5", RoutingKey: "user.*"},
		{ID: "6", RoutingKey: "user.#"},
		{ID: "7", RoutingKey: "#"},
		{ID: "8", RoutingKey: "user.created.extra"},
		{ID: "9", RoutingKey: "User.Created"},
		{ID: "10", RoutingKey: ""},
		{ID: "11", RoutingKey: "user.created"},
	}
	if err := b.Publish(ctx, msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// An end marker per queue, published last: a queue consumed one at a
	// time has delivered everything routed to it once its marker arrives.
	var ends []Message
	for _, s := range subs {
		ends = append(ends, Message{ID: "end", RoutingKey: s.RoutingKeys[len(s.RoutingKeys)-1]})
	}
	if err := b.Publish(ctx, ends); err != nil {
		t.Fatalf("Publish end markers: %v", err)
	}
	recs := map[string]*recorder{}
	for name, s := range subs {
		r := newRecorder("end")
		recs[name] = r
		consume(t, b, s, r.handle)
	}
	want := map[string][]string{
		"created":     {"1", "11", "end"},
		"created+upd": {"1", "2", "11", "end"},
		"deleted":     {"3", "end"},
		"unused":      {"end"},
	}
	for name, r := range recs {
		recv(t, r.done, 5*time.Second, "the end marker of "+subs[name].Queue)
		if got := r.got(); !slices.Equal(got, want[name]) {
			t.Errorf("queue %s got %v, want %v", subs[name].Queue, got, want[name])
		}
	}
	// The message arrives as published.
	r := recs["created+upd"]
	r.mu.Lock()
	first := r.msgs[0]
	r.mu.Unlock()
	if first.RoutingKey != "user.created" || string(first.Body) != `{"n":1}` {
		t.Errorf("delivered message %+v, want the published one", first)
	}
}

// TestBusQueueBuffersUntilConsumed: a declared queue keeps what is published
// to it while nobody consumes, in order, and hands it to the next consumer;
// a message published before any queue was bound to its key goes nowhere, as
// on a RabbitMQ exchange.
func TestBusQueueBuffersUntilConsumed(t *testing.T) {
	ctx := testenv.Context(t)
	b := NewBus(quietLog())
	sub := Subscription{Queue: "q.mailer", RoutingKeys: []string{"user.password_reset_requested"}}
	key := sub.RoutingKeys[0]

	if err := b.Publish(ctx, []Message{{ID: "unrouted", RoutingKey: key}}); err != nil {
		t.Fatalf("Publish before any queue: %v", err)
	}
	b.Declare(sub)
	if err := b.Publish(ctx, []Message{{ID: "m1", RoutingKey: key}, {ID: "m2", RoutingKey: key}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	r := newRecorder("m3")
	stop := consume(t, b, sub, r.handle)
	if err := b.Publish(ctx, []Message{{ID: "m3", RoutingKey: key}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	recv(t, r.done, 5*time.Second, "m3")
	if got := r.got(); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("first consumer got %v, want [m1 m2 m3]", got)
	}
	stop()

	// Consumer gone: the queue buffers again until the next one comes.
	if err := b.Publish(ctx, []Message{{ID: "m4", RoutingKey: key}, {ID: "m5", RoutingKey: key}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	r2 := newRecorder("m5")
	consume(t, b, sub, r2.handle)
	recv(t, r2.done, 5*time.Second, "m5")
	if got := r2.got(); !slices.Equal(got, []string{"m4", "m5"}) {
		t.Fatalf("second consumer got %v, want [m4 m5]", got)
	}
	if got := r.got(); len(got) != 3 {
		t.Errorf("the stopped consumer handled more messages: %v", got)
	}
}

// TestBusRetriesWithBackoff: a failing handler gets the same message again
// after Backoff, then after twice that, and once it succeeds the message is
// done: no further deliveries, no dead letter.
func TestBusRetriesWithBackoff(t *testing.T) {
	ctx := testenv.Context(t)
	b := NewBus(quietLog())
	const backoff = 10 * time.Millisecond
	sub := Subscription{Queue: "q.retry", RoutingKeys: []string{"k"}, Backoff: backoff, MaxAttempts: 5}
	var (
		mu    sync.Mutex
		times []time.Time
		ids   []string
	)
	succeeded := make(chan struct{})
	consume(t, b, sub, func(_ context.Context, m Message) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		ids = append(ids, m.ID)
		if len(times) < 3 {
			return fmt.Errorf("transient failure %d", len(times))
		}
		if len(times) == 3 {
			close(succeeded)
		}
		return nil
	})
	if err := b.Publish(ctx, []Message{{ID: "e1", RoutingKey: "k", Body: []byte("x")}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	recv(t, succeeded, 5*time.Second, "the third attempt")
	// Longer than the next backoff (40ms) would be: a spurious retry would
	// show up by now.
	time.Sleep(8 * backoff)

	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("handler ran %d times, want 3 (two failures, one success)", len(times))
	}
	if !slices.Equal(ids, []string{"e1", "e1", "e1"}) {
		t.Errorf("retries delivered %v, want the same message each time", ids)
	}
	if gap := times[1].Sub(times[0]); gap < backoff {
		t.Errorf("first retry came after %v, want at least Backoff %v", gap, backoff)
	}
	if gap := times[2].Sub(times[1]); gap < 2*backoff {
		t.Errorf("second retry came after %v, want at least 2×Backoff %v", gap, 2*backoff)
	}
	if dl := b.DeadLetters(sub.Queue); len(dl) != 0 {
		t.Errorf("DeadLetters = %v, want none", dl)
	}
}

// TestBusDeadLetters: a Permanent error parks the message at once; an
// ordinary error does after MaxAttempts deliveries; either way it is not
// delivered again.
func TestBusDeadLetters(t *testing.T) {
	const backoff = 10 * time.Millisecond
	cases := []struct {
		name        string
		maxAttempts int
		err         func(attempt int) error
		wantCalls   int
		wantErr     string
	}{
		{"permanent", 5, func(int) error { return Permanent(errors.New("malformed body")) }, 1, "malformed body"},
		{"wrapped permanent", 5, func(int) error { return fmt.Errorf("mailer: %w", Permanent(errors.New("no reset"))) }, 1, "mailer: no reset"},
		{"max attempts", 3, func(n int) error { return fmt.Errorf("smtp down (attempt %d)", n) }, 3, "smtp down (attempt 3)"},
		{"single attempt", 1, func(n int) error { return fmt.Errorf("smtp down (attempt %d)", n) }, 1, "smtp down (attempt 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testenv.Context(t)
			b := NewBus(quietLog())
			sub := Subscription{Queue: "q.dlq", RoutingKeys: []string{"k"}, Backoff: backoff, MaxAttempts: tc.maxAttempts}
			var mu sync.Mutex
			calls := 0
			consume(t, b, sub, func(context.Context, Message) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				return tc.err(calls)
			})
			msg := Message{ID: "e1", RoutingKey: "k", Body: []byte(`{"id":"e1"}`)}
			if err := b.Publish(ctx, []Message{msg}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			testenv.Eventually(t, 5*time.Second, "a dead letter", func() bool { return len(b.DeadLetters(sub.Queue)) > 0 })
			// Well past the next backoff: a retry after dead-lettering would
			// have happened by now.
			time.Sleep(10 * backoff)
			dl := b.DeadLetters(sub.Queue)
			if len(dl) != 1 {
				t.Fatalf("DeadLetters = %v, want exactly one", dl)
			}
			if dl[0].Message.ID != msg.ID || dl[0].Message.RoutingKey != msg.RoutingKey || string(dl[0].Message.Body) != string(msg.Body) {
				t.Errorf("dead letter holds %+v, want %+v", dl[0].Message, msg)
			}
			if dl[0].Err != tc.wantErr {
				t.Errorf("dead letter error %q, want %q", dl[0].Err, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != tc.wantCalls {
				t.Errorf("handler ran %d times, want %d", calls, tc.wantCalls)
			}
		})
	}

	t.Run("per queue", func(t *testing.T) {
		b := NewBus(quietLog())
		b.Declare(Subscription{Queue: "q.ok", RoutingKeys: []string{"k"}})
		if dl := b.DeadLetters("q.ok"); len(dl) != 0 {
			t.Errorf("DeadLetters of a clean queue = %v", dl)
		}
		if dl := b.DeadLetters("no-such-queue"); dl != nil {
			t.Errorf("DeadLetters of an unknown queue = %v, want nil", dl)
		}
	})
}

// TestBusConcurrency: Concurrency N runs N handlers at once, and never more.
func TestBusConcurrency(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := testenv.Context(t)
			b := NewBus(quietLog())
			sub := Subscription{Queue: "q.conc", RoutingKeys: []string{"k"}, Concurrency: n}
			const total = 12
			var (
				mu               sync.Mutex
				inFlight, peak   int
				handled          int
				allIn            = make(chan struct{})
				allHandled       = make(chan struct{})
				closeAllInOnce   sync.Once
				closeHandledOnce sync.Once
			)
			consume(t, b, sub, func(ctx context.Context, _ Message) error {
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				if inFlight == n {
					closeAllInOnce.Do(func() { close(allIn) })
				}
				mu.Unlock()
				// The first N handlers wait for each other: with fewer
				// than N running at once this would never be released.
				select {
				case <-allIn:
				case <-ctx.Done():
				}
				mu.Lock()
				inFlight--
				handled++
				if handled == total {
					closeHandledOnce.Do(func() { close(allHandled) })
				}
				mu.Unlock()
				return nil
			})
			msgs := make([]Message, total)
			for i := range msgs {
				msgs[i] = Message{ID: fmt.Sprint(i), RoutingKey: "k"}
			}
			if err := b.Publish(ctx, msgs); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			recv(t, allIn, 5*time.Second, fmt.Sprintf("%d handlers running at once", n))
			recv(t, allHandled, 5*time.Second, "every message handled")
			mu.Lock()
			defer mu.Unlock()
			if peak != n {
				t.Errorf("at most %d handlers ran at once, want exactly %d", peak, n)
			}
		})
	}
}

// TestBusConsumeReturnsWhenContextEnds: Consume returns nil once its context
// ends, idle or with a handler in progress (which sees the same context).
func TestBusConsumeReturnsWhenContextEnds(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		b := NewBus(quietLog())
		ctx, cancel := context.WithCancel(testenv.Context(t))
		done := make(chan error, 1)
		go func() {
			done <- b.Consume(ctx, Subscription{Queue: "q", RoutingKeys: []string{"k"}, Concurrency: 3},
				func(context.Context, Message) error { return nil })
		}()
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("Consume returned %v before its context ended", err)
		default:
		}
		cancel()
		if err := recv(t, done, 5*time.Second, "Consume to return"); err != nil {
			t.Errorf("Consume returned %v, want nil", err)
		}
	})
	// A handler in flight when the context ends runs on: its context is
	// still live (a mail that went out is recorded as sent), and Consume
	// returns once it has finished.
	t.Run("handler in flight finishes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBus(quietLog())
			ctx, cancel := context.WithCancel(t.Context())
			started, finish := make(chan struct{}), make(chan struct{})
			var errAtFinish error
			sub := Subscription{Queue: "q", RoutingKeys: []string{"k"}}
			b.Declare(sub)
			done := make(chan error, 1)
			go func() {
				done <- b.Consume(ctx, sub, func(hctx context.Context, _ Message) error {
					close(started)
					<-finish
					errAtFinish = hctx.Err()
					return nil
				})
			}()
			if err := b.Publish(ctx, []Message{{ID: "1", RoutingKey: "k"}}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			<-started
			cancel()
			time.Sleep(b.Drain / 2)
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Consume returned %v with a handler in flight", err)
			default:
			}
			close(finish)
			if err := <-done; err != nil || errAtFinish != nil {
				t.Errorf("Consume returned %v; the handler's context at its end: %v; want both nil", err, errAtFinish)
			}
		})
	})
	// A handler still running Drain after the stop is cancelled.
	t.Run("busy handler is cancelled after the drain", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBus(quietLog())
			b.Drain = 3 * time.Second
			ctx, cancel := context.WithCancel(t.Context())
			started := make(chan struct{})
			sub := Subscription{Queue: "q", RoutingKeys: []string{"k"}, MaxAttempts: 1}
			b.Declare(sub)
			done := make(chan error, 1)
			go func() {
				done <- b.Consume(ctx, sub, func(hctx context.Context, _ Message) error {
					close(started)
					<-hctx.Done()
					return hctx.Err()
				})
			}()
			if err := b.Publish(ctx, []Message{{ID: "1", RoutingKey: "k"}}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			<-started
			stopped := time.Now()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Consume returned %v, want nil", err)
			}
			if waited := time.Since(stopped); waited != b.Drain {
				t.Errorf("the handler was cancelled %v after the stop, want %v", waited, b.Drain)
			}
		})
	})
}

// TestBusPublishToFullQueue: Publish fails instead of blocking when a bound
// queue is full, names the queue, and works again once a consumer has taken
// a message off it.
func TestBusPublishToFullQueue(t *testing.T) {
	ctx := testenv.Context(t)
	b := NewBus(quietLog())
	sub := Subscription{Queue: "q.full", RoutingKeys: []string{"k"}}
	b.Declare(sub)
	b.Declare(Subscription{Queue: "q.other", RoutingKeys: []string{"other"}})

	fill := make([]Message, busQueueLen)
	for i := range fill {
		fill[i] = Message{ID: fmt.Sprint(i), RoutingKey: "k"}
	}
	if err := b.Publish(ctx, fill); err != nil {
		t.Fatalf("Publish of %d messages (the capacity): %v", len(fill), err)
	}
	publishOne := func(id string) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- b.Publish(ctx, []Message{{ID: id, RoutingKey: "k"}}) }()
		return recv(t, done, 5*time.Second, "Publish to return (it must not block on a full queue)")
	}
	err := publishOne("overflow")
	if err == nil {
		t.Fatal("Publish to a full queue returned nil")
	}
	if !strings.Contains(err.Error(), "q.full") {
		t.Errorf("error %q does not name the full queue", err)
	}
	if err := b.Publish(ctx, []Message{{ID: "o1", RoutingKey: "other"}}); err != nil {
		t.Errorf("Publish to another queue while q.full is full: %v", err)
	}

	// A consumer takes one message off and holds on to it.
	took := make(chan string, 1)
	release := make(chan struct{})
	var once sync.Once
	stop := consume(t, b, sub, func(ctx context.Context, m Message) error {
		once.Do(func() { took <- m.ID })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	if id := recv(t, took, 5*time.Second, "the consumer to take a message"); id != "0" {
		t.Errorf("consumer took %q first, want the oldest message %q", id, "0")
	}
	if err := publishOne("fits"); err != nil {
		t.Errorf("Publish after one message was taken: %v", err)
	}
	if err := publishOne("overflow-again"); err == nil {
		t.Error("Publish to the refilled queue returned nil")
	}
	close(release)
	stop()
}
