package app

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/worker"
)

// runEmbeddedEvents runs the embedded event pipeline inside the service
// process: the outbox relay publishes to the in-process bus, and the
// worker's consumers run here too. Used when no RabbitMQ is configured.
func runEmbeddedEvents(ctx context.Context, cfg *config.Config, log *slog.Logger, core *Core) error {
	mailer, err := NewResetMailer(cfg)
	if err != nil {
		return err
	}
	bus := events.NewBus(log)
	bus.Declare(worker.MailerSubscription)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return (&events.Relay{Outbox: core.Store, Publisher: bus, Log: log}).Run(ctx)
	})
	g.Go(func() error {
		return bus.Consume(ctx, worker.MailerSubscription, worker.Mailer(core.Store, mailer, time.Now, log))
	})
	return g.Wait()
}
