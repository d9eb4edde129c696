package rabbitmq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/events/rabbitmq"
	"github.com/usersvc/usersvc/internal/testenv"
)

func TestPublishConsume(t *testing.T) {
	b, _ := newBroker(t)
	q, created, deleted := uniqueQueue(t), uniqueKey(), uniqueKey()
	unbound := uniqueKey()
	got := make(chan events.Message, 100)
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{created, deleted}},
		func(_ context.Context, m events.Message) error {
			got <- m
			return nil
		})

	var msgs []events.Message
	want := map[string]events.Message{}
	for i := range 30 {
		m := events.Message{
			ID:         fmt.Sprintf("%s-%d", q, i),
			RoutingKey: []string{created, deleted, unbound}[i%3],
			Body:       fmt.Appendf(nil, `{"n":%d}`, i),
		}
		msgs = append(msgs, m)
		if m.RoutingKey != unbound {
			want[m.ID] = m
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Publish(ctx, msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	for range len(want) {
		select {
		case m := <-got:
			w, ok := want[m.ID]
			if !ok {
				t.Fatalf("unexpected or duplicate message %+v", m)
			}
			delete(want, m.ID)
			if m.RoutingKey != w.RoutingKey || !bytes.Equal(m.Body, w.Body) {
				t.Errorf("got %s %s %s, want %s %s", m.ID, m.RoutingKey, m.Body, w.RoutingKey, w.Body)
			}
		case <-ctx.Done():
			t.Fatalf("%d messages not delivered: %v", len(want), want)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("message with an unbound key delivered: %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	assertDepth(t, q, 0)
}

func TestRetryWithBackoffThenSuccess(t *testing.T) {
	b, _ := newBroker(t)
	q, key := uniqueQueue(t), uniqueKey()
	const backoff = 50 * time.Millisecond
	var (
		mu    sync.Mutex
		times []time.Time
		seen  []events.Message
	)
	done := make(chan struct{})
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}, MaxAttempts: 5, Backoff: backoff, MaxBackoff: time.Second},
		func(_ context.Context, m events.Message) error {
			mu.Lock()
			defer mu.Unlock()
			times, seen = append(times, time.Now()), append(seen, m)
			if len(times) <= 2 {
				return errors.New("flaky dependency")
			}
			close(done)
			return nil
		})

	sent := events.Message{ID: q + "-1", RoutingKey: key, Body: []byte(`{"retry":true}`)}
	publish(t, b, sent)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("handler did not succeed in time: %d deliveries", len(times))
	}
	time.Sleep(300 * time.Millisecond) // a 4th delivery would come now
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("delivered %d times, want 3", len(times))
	}
	for i, m := range seen {
		if m.ID != sent.ID || m.RoutingKey != sent.RoutingKey || !bytes.Equal(m.Body, sent.Body) {
			t.Errorf("delivery %d = %+v, want %+v", i+1, m, sent)
		}
	}
	// Delay(1) = 50ms, Delay(2) = 100ms; a little slack for clock rounding.
	for i, want := range []time.Duration{backoff, 2 * backoff} {
		if gap := times[i+1].Sub(times[i]); gap < want*9/10 {
			t.Errorf("retry %d came after %v, want >= %v", i+1, gap, want)
		}
	}
	t.Logf("gaps: %v, %v", times[1].Sub(times[0]), times[2].Sub(times[1]))
	assertDepth(t, q, 0)
	assertDepth(t, rabbitmq.RetryQueue(q), 0)
	assertDepth(t, rabbitmq.DeadLetterQueue(q), 0)
}

func TestPermanentErrorDeadLetters(t *testing.T) {
	b, _ := newBroker(t)
	q, key := uniqueQueue(t), uniqueKey()
	var calls atomic.Int32
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}, Backoff: 20 * time.Millisecond},
		func(context.Context, events.Message) error {
			calls.Add(1)
			return events.Permanent(errors.New("malformed body"))
		})
	sent := events.Message{ID: q + "-1", RoutingKey: key, Body: []byte(`{not json`)}
	publish(t, b, sent)

	d := getOne(t, rabbitmq.DeadLetterQueue(q))
	assertDeadLetter(t, d, sent, 1, "malformed body")
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	stop()
	assertDepth(t, q, 0)
	assertDepth(t, rabbitmq.RetryQueue(q), 0)
}

func TestMaxAttemptsDeadLetters(t *testing.T) {
	b, _ := newBroker(t)
	q, key := uniqueQueue(t), uniqueKey()
	var calls atomic.Int32
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}, MaxAttempts: 3, Backoff: 20 * time.Millisecond},
		func(context.Context, events.Message) error {
			calls.Add(1)
			return errors.New("smtp: connection refused")
		})
	sent := events.Message{ID: q + "-1", RoutingKey: key, Body: []byte(`{"n":1}`)}
	publish(t, b, sent)

	d := getOne(t, rabbitmq.DeadLetterQueue(q))
	assertDeadLetter(t, d, sent, 3, "smtp: connection refused")
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
	stop()
	assertDepth(t, q, 0)
	assertDepth(t, rabbitmq.RetryQueue(q), 0)
}

// A failed message that cannot be moved (here: its dead-letter queue was
// deleted) is requeued, not lost.
func TestRequeueWhenMoveFails(t *testing.T) {
	b, logs := newBroker(t)
	q, key := uniqueQueue(t), uniqueKey()
	dlq := rabbitmq.DeadLetterQueue(q)
	admin := adminChannel(t)
	var calls atomic.Int32
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}},
		func(context.Context, events.Message) error {
			var err error
			if calls.Add(1) == 1 {
				_, err = admin.QueueDelete(dlq, false, false, false)
			} else {
				_, err = admin.QueueDeclare(dlq, true, false, false, false, nil)
			}
			if err != nil {
				t.Errorf("toggle %s: %v", dlq, err)
			}
			return events.Permanent(errors.New("bad"))
		})
	sent := events.Message{ID: q + "-1", RoutingKey: key, Body: []byte(`{}`)}
	publish(t, b, sent)

	d := getOne(t, dlq)
	assertDeadLetter(t, d, sent, 1, "bad")
	if n := calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2", n)
	}
	if !strings.Contains(logs.String(), "could not move the failed message") {
		t.Errorf("failed move not logged:\n%s", logs)
	}
	stop()
	assertDepth(t, q, 0)
}

func TestConcurrency(t *testing.T) {
	b, _ := newBroker(t)
	q, key := uniqueQueue(t), uniqueKey()
	const concurrency, total = 4, 8
	var inFlight, peak atomic.Int32
	started, handled := make(chan struct{}, total), make(chan struct{}, total)
	release := make(chan struct{})
	stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}, Concurrency: concurrency},
		func(ctx context.Context, _ events.Message) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			handled <- struct{}{}
			return nil
		})
	var msgs []events.Message
	for i := range total {
		msgs = append(msgs, events.Message{ID: fmt.Sprintf("%s-%d", q, i), RoutingKey: key, Body: []byte(`{}`)})
	}
	publish(t, b, msgs...)

	timeout := time.After(10 * time.Second)
	for i := range concurrency {
		select {
		case <-started:
		case <-timeout:
			t.Fatalf("only %d handlers started, want %d at once", i, concurrency)
		}
	}
	select {
	case <-started:
		t.Fatalf("handler %d started while %d were running", concurrency+1, concurrency)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for i := range total {
		select {
		case <-handled:
		case <-timeout:
			t.Fatalf("only %d of %d messages handled", i, total)
		}
	}
	if p := peak.Load(); p != concurrency {
		t.Errorf("peak concurrency %d, want %d", p, concurrency)
	}
	stop()
	assertDepth(t, q, 0)
}

// TestStopFinishesHandlersInFlight: when Consume's context ends, a handler
// in flight goes on with a live context and its message is acknowledged
// (a worker stopped by SIGTERM while sending a mail records it as sent,
// and no other worker sends it again); only one still running after the
// drain timeout is cancelled, and its message goes back on the queue.
func TestStopFinishesHandlersInFlight(t *testing.T) {
	for _, c := range []struct {
		name      string
		drain     time.Duration
		blocks    bool // the handler waits for its context to end
		wantDepth int
	}{
		{"finishes", rabbitmq.DefaultDrainTimeout, false, 0},
		{"drain timeout", 200 * time.Millisecond, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _ := newBroker(t, rabbitmq.WithDrainTimeout(c.drain))
			q, key := uniqueQueue(t), uniqueKey()
			started, release := make(chan struct{}), make(chan struct{})
			var ctxErr atomic.Value
			stop := startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}},
				func(ctx context.Context, _ events.Message) error {
					close(started)
					if c.blocks {
						<-ctx.Done()
						return ctx.Err()
					}
					<-release
					if err := ctx.Err(); err != nil {
						ctxErr.Store(err)
						return err
					}
					return nil
				})
			publish(t, b, events.Message{ID: q, RoutingKey: key, Body: []byte(`{}`)})
			<-started
			stopped := make(chan struct{})
			go func() { stop(); close(stopped) }()
			if !c.blocks {
				time.Sleep(100 * time.Millisecond) // the stop has begun; the handler is still in flight
				close(release)
			}
			<-stopped
			if err := ctxErr.Load(); err != nil {
				t.Errorf("the handler's context ended with the stop: %v", err)
			}
			assertDepth(t, q, c.wantDepth)
		})
	}
}

func TestPingAndClose(t *testing.T) {
	b, _ := newBroker(t)
	if err := b.Ping(); err != nil {
		t.Fatalf("Ping after Dial: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Ping(); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.Publish(ctx, []events.Message{{ID: "x", RoutingKey: uniqueKey(), Body: []byte(`{}`)}})
	if !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	err = b.Consume(ctx, events.Subscription{Queue: "usersvc.test.never-declared"}, func(context.Context, events.Message) error { return nil })
	if !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Consume after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDialFailsWithoutLeakingPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	// Port 1 on loopback: nothing listens, the connect is refused at once.
	b, err := rabbitmq.Dial(ctx, "amqp://guest:s3cret@127.0.0.1:1/", slog.New(slog.DiscardHandler))
	if err == nil {
		b.Close()
		t.Fatal("Dial succeeded without a broker")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Dial took %v to fail", d)
	}
	if _, err := rabbitmq.Dial(ctx, "http://not-amqp", nil); err == nil {
		t.Error("Dial accepted a non-AMQP URL")
	}
}

// The broker goes away (the proxy in front of it is cut) and comes back:
// Publish fails fast meanwhile, Ping says so, and afterwards the same Broker
// publishes and the consumer that ran before the outage receives.
func TestOutageAndReconnect(t *testing.T) {
	url, proxy := testenv.RabbitMQProxy(t)
	b, logs := newBrokerAt(t, url)
	q, key := uniqueQueue(t), uniqueKey()
	got := make(chan events.Message, 10)
	startConsumer(t, b, events.Subscription{Queue: q, RoutingKeys: []string{key}},
		func(_ context.Context, m events.Message) error {
			got <- m
			return nil
		})
	// Delivery is at least once: a message whose ack the cut swallowed
	// comes again after the reconnect, which is correct and skipped here.
	seen := map[string]bool{}
	receive := func(id string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case m := <-got:
				if seen[m.ID] {
					continue
				}
				if m.ID != id {
					t.Fatalf("received %s, want %s", m.ID, id)
				}
				seen[m.ID] = true
				return
			case <-deadline:
				t.Fatalf("%s not received within %v", id, within)
			}
		}
	}
	publish(t, b, events.Message{ID: q + "-before", RoutingKey: key, Body: []byte(`{}`)})
	receive(q+"-before", 5*time.Second)

	// Registered last, so it runs first: the broker is reachable again
	// before the other cleanups (stopping the consumer) run, whatever failed.
	t.Cleanup(proxy.Up)
	proxy.Down()
	outage := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := b.Publish(ctx, []events.Message{{ID: q + "-lost", RoutingKey: key, Body: []byte(`{}`)}})
	if err == nil {
		t.Fatal("Publish during the outage succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Publish during the outage took %v to fail", d)
	}
	t.Logf("Publish during the outage: %v (after %v)", err, time.Since(start))
	testenv.Eventually(t, 5*time.Second, "Ping to report the outage", func() bool { return b.Ping() != nil })
	if err := b.Publish(ctx, []events.Message{{ID: q + "-lost", RoutingKey: key, Body: []byte(`{}`)}}); !errors.Is(err, rabbitmq.ErrNotConnected) {
		t.Errorf("Publish while disconnected = %v, want ErrNotConnected", err)
	}
	time.Sleep(time.Second) // let a few reconnect attempts fail

	proxy.Up()
	back := time.Now()
	testenv.Eventually(t, 30*time.Second, "Ping to report the reconnect", func() bool { return b.Ping() == nil })
	t.Logf("outage %v; reconnected %v after the broker was back", back.Sub(outage), time.Since(back))

	publish(t, b, events.Message{ID: q + "-after", RoutingKey: key, Body: []byte(`{}`)})
	receive(q+"-after", 15*time.Second)

	out := logs.String()
	if n := strings.Count(out, "connection lost"); n != 1 {
		t.Errorf("connection loss logged %d times, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "connection recovered"); n != 1 {
		t.Errorf("recovery logged %d times, want 1:\n%s", n, out)
	}
}

// --- helpers ---

// newBroker dials the test broker and closes it when the test ends. The
// returned log holds what the Broker logged.
func newBroker(t *testing.T, opts ...rabbitmq.Option) (*rabbitmq.Broker, *testLog) {
	t.Helper()
	return newBrokerAt(t, testenv.RabbitMQURL(t), opts...)
}

// testExchange is the exchange every Broker of these tests uses on the
// shared broker instead of events.Exchange: a deployment on the same broker
// may use that one, and declaring it would leave it behind. TestMain
// deletes it when the tests end.
var testExchange = "usersvc.test." + testenv.RandomHex(4) + ".events"

func TestMain(m *testing.M) {
	code := m.Run()
	if url := os.Getenv("USERSVC_TEST_RABBITMQ_URL"); url != "" {
		if err := deleteExchange(url, testExchange); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// deleteExchange deletes exchange on the broker at url; one never declared
// is no error.
func deleteExchange(url, exchange string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("dial RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDelete(exchange, false, false); err != nil {
		return fmt.Errorf("delete exchange %s: %w", exchange, err)
	}
	return nil
}

// newBrokerAt is newBroker on the broker at url (a proxy, a private node),
// on testExchange unless opts say otherwise.
func newBrokerAt(t *testing.T, url string, opts ...rabbitmq.Option) (*rabbitmq.Broker, *testLog) {
	t.Helper()
	opts = append([]rabbitmq.Option{rabbitmq.WithExchange(testExchange)}, opts...)
	logs := &testLog{t: t}
	t.Cleanup(logs.stop) // registered first: runs after the Broker is closed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := rabbitmq.Dial(ctx, url, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, logs
}

// testLog records log output and echoes it to t.Log while the test runs.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
}

func uniqueKey() string { return "test." + testenv.RandomHex(4) }

// uniqueQueue returns a fresh queue name and deletes the queue and its
// retry and dead-letter queues when the test ends.
func uniqueQueue(t *testing.T) string {
	t.Helper()
	q := "usersvc.test." + testenv.RandomHex(4)
	url := testenv.RabbitMQURL(t)
	t.Cleanup(func() {
		conn := dialAdmin(t, url)
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: open channel: %v", err)
			return
		}
		for _, name := range []string{q, rabbitmq.RetryQueue(q), rabbitmq.DeadLetterQueue(q)} {
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", name, err)
			}
		}
	})
	return q
}

// dialAdmin opens a plain amqp091 connection, retrying for a while (the
// broker may be coming back from an outage test).
func dialAdmin(t testing.TB, url string) *amqp.Connection {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := amqp.Dial(url)
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", "the test broker", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func adminChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn := dialAdmin(t, testenv.RabbitMQURL(t))
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// inspect returns the queue's ready messages and consumers. It uses a
// channel of its own: a passive declare of a missing queue kills it.
func inspect(t *testing.T, queue string) (amqp.Queue, error) {
	t.Helper()
	conn := dialAdmin(t, testenv.RabbitMQURL(t))
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return amqp.Queue{}, err
	}
	return ch.QueueDeclarePassive(queue, true, false, false, false, nil)
}

func assertDepth(t *testing.T, queue string, want int) {
	t.Helper()
	q, err := inspect(t, queue)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	if q.Messages != want {
		t.Errorf("queue %s holds %d messages, want %d", queue, q.Messages, want)
	}
}

// startConsumer runs b.Consume in the background and returns once the
// consumer is registered with the broker (so that what is published next
// is routed to its queue). stop ends it and waits for Consume to return,
// after which unacked deliveries are back in the queue; it also runs when
// the test ends.
func startConsumer(t *testing.T, b *rabbitmq.Broker, sub events.Subscription, h events.Handler) (stop func()) {
	t.Helper()
	stop, done := testenv.Background(t, "Consume("+sub.Queue+")", 15*time.Second,
		func(ctx context.Context) error { return b.Consume(ctx, sub, h) })
	testenv.Eventually(t, 10*time.Second, "the consumer of "+sub.Queue, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Consume returned early: %v", err)
		default:
		}
		q, err := inspect(t, sub.Queue)
		return err == nil && q.Consumers > 0
	})
	return stop
}

func publish(t *testing.T, b *rabbitmq.Broker, msgs ...events.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Publish(ctx, msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// getOne polls queue until it holds a message and returns it (acked). The
// queue may not exist yet; a channel per poll survives the 404.
func getOne(t *testing.T, queue string) amqp.Delivery {
	t.Helper()
	conn := dialAdmin(t, testenv.RabbitMQURL(t))
	defer conn.Close()
	var d amqp.Delivery
	testenv.Eventually(t, 10*time.Second, "a message in "+queue, func() bool {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("open channel: %v", err)
		}
		defer ch.Close()
		var ok bool
		d, ok, err = ch.Get(queue, true)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return false
		}
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		return ok
	})
	return d
}

func assertDeadLetter(t *testing.T, d amqp.Delivery, sent events.Message, attempt int, errText string) {
	t.Helper()
	if d.MessageId != sent.ID || !bytes.Equal(d.Body, sent.Body) {
		t.Errorf("dead letter %s %s, want %s %s", d.MessageId, d.Body, sent.ID, sent.Body)
	}
	if d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
		t.Errorf("dead letter lost its properties: content type %q, delivery mode %d", d.ContentType, d.DeliveryMode)
	}
	if got, _ := d.Headers["x-error"].(string); !strings.Contains(got, errText) {
		t.Errorf("x-error = %q, want it to contain %q", got, errText)
	}
	if got := fmt.Sprint(d.Headers["x-attempt"]); got != fmt.Sprint(attempt) {
		t.Errorf("x-attempt = %s, want %d", got, attempt)
	}
	if got, _ := d.Headers["x-routing-key"].(string); got != sent.RoutingKey {
		t.Errorf("x-routing-key = %q, want %q", got, sent.RoutingKey)
	}
}

// While a resource alarm blocks publishers, Publish fails at once (after
// at most one publish that waits for its confirmation) instead of hanging,
// and works again when the alarm clears.
//
// The alarm blocks every publisher of a node, so the test runs a node of
// its own rather than alarm the machine's broker.
func TestBlockedBrokerFailsFast(t *testing.T) {
	node := testenv.PrivateRabbitMQ(t)
	b, logs := newBrokerAt(t, node.URL)
	key := uniqueKey()
	publish(t, b, events.Message{ID: "before-alarm", RoutingKey: key, Body: []byte(`{}`)})

	node.Ctl("set_vm_memory_high_watermark", "0.0000001")

	// RabbitMQ tells a connection it is blocked when it next publishes.
	testenv.Eventually(t, 20*time.Second, "the broker to block publishing", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = b.Publish(ctx, []events.Message{{ID: "during-alarm", RoutingKey: key, Body: []byte(`{}`)}})
		return strings.Contains(logs.String(), "broker blocks publishing")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := b.Publish(ctx, []events.Message{{ID: "during-alarm", RoutingKey: key, Body: []byte(`{}`)}})
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("Publish while blocked = %v after %v, want a prompt error", err, time.Since(start))
	}
	t.Logf("Publish while blocked: %v", err)
	if err := b.Ping(); err != nil {
		t.Errorf("Ping while blocked = %v; the connection is up", err)
	}

	node.Ctl("set_vm_memory_high_watermark", "0.4") // the default
	testenv.Eventually(t, 20*time.Second, "the broker to unblock publishing", func() bool {
		return strings.Contains(logs.String(), "broker unblocked publishing")
	})
	publish(t, b, events.Message{ID: "after-alarm", RoutingKey: key, Body: []byte(`{}`)})
}
