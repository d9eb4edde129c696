// Command orders runs the example order service: gin over HTTP, go-micro
// to reach the user service, and usersvc's SDK for who is calling.
// Configuration is the environment:
//
//	ORDERS_HTTP_ADDR       listen address (default 127.0.0.1:8090)
//	ORDERS_ETCD_ENDPOINTS  the registry the user service is in (host:port,...)
//	ORDERS_RABBITMQ_URL    the broker the user service publishes to
//	ORDERS_EXCHANGE        its event exchange (default user.events)
//	ORDERS_CLIENT_ID, ORDERS_CLIENT_SECRET  this service's service account
//	ORDERS_JWT_ISSUER, ORDERS_JWT_AUDIENCE  as the user service's (default usersvc)
//	ORDERS_FAIL_OPEN       honour tokens this long without the revocation stream (default 0: fail closed)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go-micro.dev/v6/client"
	mgrpc "go-micro.dev/v6/client/grpc"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/registry/etcd"

	"github.com/usersvc/usersvc/examples/orders"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/revocations"
	"github.com/usersvc/usersvc/sdk/userclient"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("orders failed", "error", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(log *slog.Logger) error {
	failOpen, err := time.ParseDuration(env("ORDERS_FAIL_OPEN", "0s"))
	if err != nil {
		return fmt.Errorf("ORDERS_FAIL_OPEN: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// The user service, found in the registry. Calls through `users` are
	// signed with this service's service account, renewed before expiry.
	reg := etcd.NewEtcdRegistry(registry.Addrs(strings.Split(os.Getenv("ORDERS_ETCD_ENDPOINTS"), ",")...))
	plain := userclient.New(mgrpc.NewClient(client.Registry(reg)))
	account := userclient.NewServiceAccount(plain, os.Getenv("ORDERS_CLIENT_ID"), os.Getenv("ORDERS_CLIENT_SECRET"))
	users := userclient.New(mgrpc.NewClient(client.Registry(reg), client.Wrap(account.Wrapper())))

	// Revocations pushed over RabbitMQ, caught up over the user service's
	// Revocations RPC after every (re)connect.
	feed, err := revocations.New(revocations.Config{URL: os.Getenv("ORDERS_RABBITMQ_URL"),
		Exchange: env("ORDERS_EXCHANGE", revocations.DefaultExchange), CatchUp: users,
		FailOpen: failOpen, Logger: log})
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(auth.Config{Keys: plain.KeySource(), Revocations: feed,
		Issuer: env("ORDERS_JWT_ISSUER", "usersvc"), Audience: env("ORDERS_JWT_AUDIENCE", "usersvc")})
	if err != nil {
		return err
	}
	feedDone := make(chan error, 1)
	go func() { feedDone <- feed.Run(ctx) }()

	srv := &http.Server{Addr: env("ORDERS_HTTP_ADDR", "127.0.0.1:8090"), ReadHeaderTimeout: 10 * time.Second,
		Handler: orders.NewServer(verifier, users, feed.Ready).Handler()}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.ListenAndServe() }()
	log.Info("orders started", "addr", srv.Addr)

	select {
	case <-ctx.Done():
	case err := <-serveDone:
		return fmt.Errorf("serve: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-feedDone
	log.Info("orders stopped")
	return nil
}
