package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/events/rabbitmq"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/worker"
)

// eventPipeline moves the service's events out of the outbox. With
// RabbitMQ configured the relay publishes there and `usersvc worker`
// consumes; without it the service runs the embedded pipeline itself.
type eventPipeline struct {
	run    func(context.Context) error
	checks []check
	close  func()
}

func newEventPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger, core *Core) (*eventPipeline, error) {
	if cfg.RabbitMQURL == "" {
		return &eventPipeline{run: func(ctx context.Context) error { return runEmbeddedEvents(ctx, cfg, log, core) },
			close: func() {}}, nil
	}
	broker, err := dialBroker(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq (USERSVC_RABBITMQ_URL): %w", err)
	}
	return &eventPipeline{
		run: func(ctx context.Context) error {
			return (&events.Relay{Outbox: core.Store, Publisher: broker, Destination: broker.Exchange(), Log: log}).Run(ctx)
		},
		checks: []check{{name: "rabbitmq", fn: func(context.Context) error { return broker.Ping() }}},
		// With RabbitMQ, the worker feeds the search index.
		close: func() { _ = broker.Close() },
	}, nil
}

// consumer is one subscription and the handler of its events.
type consumer struct {
	sub     events.Subscription
	handler events.Handler
}

// consumers is the one list of event consumers, whichever transport
// carries the events (the in-process bus or RabbitMQ): the mailer always,
// the indexer when there is a search index to feed (idx not nil).
func consumers(p worker.Processed, mailer worker.Sender, idx search.Index, log *slog.Logger) []consumer {
	cs := []consumer{{worker.MailerSubscription, worker.Mailer(p, mailer, time.Now, log)}}
	if idx != nil {
		cs = append(cs, consumer{worker.IndexerSubscription, worker.Indexer(idx)})
	}
	return cs
}

// runEmbeddedEvents runs the embedded event pipeline inside the service
// process: the outbox relay publishes to the in-process bus, and the
// worker's consumers run here too. Used when no RabbitMQ is configured.
func runEmbeddedEvents(ctx context.Context, cfg *config.Config, log *slog.Logger, core *Core) error {
	mailer, err := NewResetMailer(cfg)
	if err != nil {
		return err
	}
	bus := events.NewBus(log)
	bus.Drain = cfg.ShutdownTimeout
	cs := consumers(core.Store, mailer, core.Search, log)
	for _, c := range cs {
		bus.Declare(c.sub) // before the relay publishes, so nothing is dropped
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range cs {
		g.Go(func() error { return bus.Consume(ctx, c.sub, c.handler) })
	}
	g.Go(func() error {
		return (&events.Relay{Outbox: core.Store, Publisher: bus, Log: log}).Run(ctx)
	})
	return g.Wait()
}

// RunWorker consumes user events from RabbitMQ: the mailer sends reset
// mail. It needs the database for its processed-events records, which make
// redelivered events harmless.
func RunWorker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if cfg.RabbitMQURL == "" {
		return fmt.Errorf("config: USERSVC_RABBITMQ_URL (--rabbitmq-url) is required by the worker; without it the service delivers events itself")
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := PrepareSchema(ctx, cfg, st, log); err != nil {
		return err
	}
	mailer, err := NewResetMailer(cfg)
	if err != nil {
		return err
	}
	broker, err := dialBroker(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("rabbitmq (USERSVC_RABBITMQ_URL): %w", err)
	}
	defer broker.Close()
	checks := []check{{name: "database", fn: st.Ping}, {name: "rabbitmq", fn: func(context.Context) error { return broker.Ping() }}}
	// Only Elasticsearch can be shared with the service processes that
	// search it; the embedded index lives inside the dev process.
	var idx search.Index
	if cfg.ElasticsearchURL != "" {
		if idx, err = OpenSearch(ctx, cfg, ModeService); err != nil {
			return err
		}
		defer idx.Close()
		checks = append(checks, check{name: "search", fn: idx.Ping})
	}
	g, gctx := errgroup.WithContext(ctx)
	var queues []string
	for _, c := range consumers(st, mailer, idx, log) {
		sub := inNamespace(cfg, c.sub)
		queues = append(queues, sub.Queue)
		g.Go(func() error { return broker.Consume(gctx, sub, c.handler) })
	}
	g.Go(func() error { return serveOps(gctx, cfg, log, checks, storeMetrics(st, false)) })
	log.Info("worker started", "queues", queues)
	return g.Wait()
}

// dialBroker connects to USERSVC_RABBITMQ_URL, on the exchange of the
// deployment's namespace.
func dialBroker(ctx context.Context, cfg *config.Config, log *slog.Logger) (*rabbitmq.Broker, error) {
	opts := []rabbitmq.Option{rabbitmq.WithDrainTimeout(cfg.ShutdownTimeout)}
	if cfg.Namespace != "" {
		opts = append(opts, rabbitmq.WithExchange(cfg.Namespace+"."+events.Exchange))
	}
	return rabbitmq.Dial(ctx, cfg.RabbitMQURL, log, opts...)
}

// inNamespace is sub with its queue in the deployment's namespace
// ("<namespace>.usersvc.mailer"), so two deployments on one broker never
// consume each other's events.
func inNamespace(cfg *config.Config, sub events.Subscription) events.Subscription {
	if cfg.Namespace != "" {
		sub.Queue = cfg.Namespace + "." + sub.Queue
	}
	return sub
}
