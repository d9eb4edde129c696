package userclient_test

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go-micro.dev/v6/client"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/events/rabbitmq"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authmicro"
	"github.com/usersvc/usersvc/sdk/revocations"
	"github.com/usersvc/usersvc/sdk/userclient"
)

// TestRevocationsCatchUp: the Revocations RPC returns what was revoked,
// to a service account only.
func TestRevocationsCatchUp(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	var jtis []string
	for range 3 {
		s, err := w.st.Service.Auth(ctx, "ann@example.com", "correct horse battery staple")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.st.Service.Revoke(ctx, s.RefreshToken, s.AccessToken); err != nil {
			t.Fatal(err)
		}
		c, _ := w.st.Tokens.Parse(s.AccessToken)
		jtis = append(jtis, c.ID)
	}
	sa := userclient.NewServiceAccount(userclient.New(w.client()), w.clientID, w.key)
	users := userclient.New(w.client(client.Wrap(sa.Wrapper())))
	revs, err := users.RevocationsSince(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range revs {
		got = append(got, r.TokenID)
	}
	if !slices.Equal(got, jtis) {
		t.Fatalf("caught up tokens %v, want %v", got, jtis)
	}
	if revs, err := users.RevocationsSince(ctx, time.Now().Add(time.Minute)); err != nil || len(revs) != 0 {
		t.Fatalf("since the future: %v, %v", revs, err)
	}
	s, err := w.st.Service.Auth(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	plain := userclient.New(w.client())
	if _, err := plain.RevocationsSince(authmicro.WithBearer(ctx, s.AccessToken), time.Time{}); !errors.Is(err, userclient.ErrPermissionDenied) {
		t.Fatalf("a user reads revocations: err = %v, want ErrPermissionDenied", err)
	}
}

// TestLogoutReachesVerifier runs the whole path in one process with the
// real pieces: the service's outbox, its relay to RabbitMQ, the SDK's feed
// (caught up over the RPC as a service account) and its verifier. A
// logged-out or disabled user's token is refused within the relay's poll
// and a delivery.
func TestLogoutReachesVerifier(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	w := newWorldWith(t, stack.Options{NoEvents: true})
	ctx := testenv.Context(t)
	log := slog.New(slog.DiscardHandler)
	exchange := testenv.RabbitMQExchange(t, amqpURL, "test.sdk.")
	broker, err := rabbitmq.Dial(ctx, amqpURL, log, rabbitmq.WithExchange(exchange))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	testenv.Background(t, "relay", 5*time.Second, (&events.Relay{Outbox: w.st.Store, Publisher: broker, Log: log}).Run)

	sa := userclient.NewServiceAccount(userclient.New(w.client()), w.clientID, w.key)
	users := userclient.New(w.client(client.Wrap(sa.Wrapper())))
	feed, err := revocations.New(revocations.Config{URL: amqpURL, Exchange: exchange, CatchUp: users, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Background(t, "feed", 5*time.Second, feed.Run)
	v, err := auth.NewVerifier(auth.Config{Keys: users.KeySource(), Issuer: stack.Issuer, Audience: stack.Audience, Revocations: feed})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the feed live", func() bool { return feed.Ready() == nil })

	refusedWithin := func(t *testing.T, tok string, act func() error) time.Duration {
		t.Helper()
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("before: %v", err)
		}
		start := time.Now()
		if err := act(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the token refused", func() bool {
			_, err := v.Verify(ctx, tok)
			return errors.Is(err, auth.ErrRevoked)
		})
		return time.Since(start)
	}
	s, err := w.st.Service.Auth(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logout refused after %v", refusedWithin(t, s.AccessToken, func() error {
		return w.st.Service.Revoke(ctx, s.RefreshToken, s.AccessToken)
	}))
	s, err = w.st.Service.Auth(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	disabled := user.StatusDisabled
	t.Logf("disable refused after %v", refusedWithin(t, s.AccessToken, func() error {
		_, err := w.st.Service.Update(ctx, user.SystemActor, w.userID, user.UpdateInput{Status: &disabled})
		return err
	}))
}
