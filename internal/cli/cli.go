// Package cli is the usersvc command line: it parses the subcommand and its
// configuration and hands over to package app. Kept apart from main so it
// can be tested in-process.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/usersvc/usersvc/internal/app"
	"github.com/usersvc/usersvc/internal/buildinfo"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

const usage = `usersvc: a user service (accounts, tokens, password reset) on go-micro.

Usage:
  usersvc dev                     gateway + API + service in one process, embedded defaults
  usersvc gateway                 the HTTP gateway (routes to API instances found in etcd)
  usersvc api                     the HTTP API (gin), calls the service over gRPC
  usersvc service                 the user service (gRPC, registered in etcd)
  usersvc worker                  consumes user events from RabbitMQ: reset mail, search index
  usersvc migrate                 apply database migrations
  usersvc reindex                 rebuild the search index (Elasticsearch, or the embedded one) from the database
  usersvc admin create --email E  create an admin; the password is read from standard input
  usersvc keys generate           write a new Ed25519 signing key to the keys directory
  usersvc admin service-account create --name N --scopes S
                                  create a service account; prints its client id and secret once
  usersvc admin service-account list
  usersvc admin service-account revoke --id ID
  usersvc certs generate --dir D  write a development CA and gRPC server/client certificates
  usersvc healthcheck [--url U]   exit 0 if the role's /healthz answers 200 (container health check)
  usersvc version                 print the version and commit of this binary

Every command takes the settings below as flags (--http-addr), USERSVC_* environment
variables or keys of a YAML file given by --config; flags win over the environment,
the environment over the file.
`

// IO is where a command reads and writes; tests pass buffers.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}

// Run runs one command with args (without the program name).
func Run(ctx context.Context, args []string, io IO) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(io.Stderr, usage, "\nSettings:\n", config.Usage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "version" {
		fmt.Fprintln(io.Stdout, buildinfo.String())
		return 0
	}
	if cmd == "admin" || cmd == "keys" || cmd == "certs" {
		if len(rest) == 0 {
			fmt.Fprintf(io.Stderr, "usersvc %s: missing subcommand\n", cmd)
			return 2
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
		if cmd == "admin service-account" {
			if len(rest) == 0 {
				fmt.Fprintf(io.Stderr, "usersvc %s: missing subcommand (create, list or revoke)\n", cmd)
				return 2
			}
			cmd, rest = cmd+" "+rest[0], rest[1:]
		}
	}
	err := run(ctx, cmd, rest, io)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(io.Stderr, "usersvc:", err)
		return 2
	default:
		fmt.Fprintln(io.Stderr, "usersvc:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, cmd string, args []string, io IO) error {
	var adminEmail, adminName, healthURL string
	var extra func(*flag.FlagSet)
	switch cmd {
	case "admin create":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&adminEmail, "email", "", "email of the new admin (required)")
			fs.StringVar(&adminName, "name", "Administrator", "display name of the new admin")
		}
	case "healthcheck":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&healthURL, "url", "", "URL to probe; default the /healthz of the configured listeners")
		}
	}
	var sa serviceAccountFlags
	var certs certsFlags
	switch cmd {
	case "admin service-account create", "admin service-account revoke", "admin service-account list":
		extra = sa.define(cmd)
	case "certs generate":
		extra = certs.define
	}
	cfg, rest, err := config.LoadWith(cmd, args, io.Getenv, io.Stderr, extra)
	if err != nil {
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return fmt.Errorf("%w: %v", errUsage, ue.Err)
		}
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, rest)
	}
	if cmd == "admin create" && adminEmail == "" {
		return fmt.Errorf("%w: admin create needs --email", errUsage)
	}
	if err := cfg.Require(); err != nil {
		return err
	}
	log := app.NewLogger(cfg, io.Stderr, telemetry.ServiceName(app.ServiceName(cmd)))
	rpc.UseLogger(log)
	if serving[cmd] {
		tr, err := telemetry.Setup(ctx, app.ServiceName(cmd), log)
		if err != nil {
			return err
		}
		defer func() {
			// Flush the spans of the last requests before exiting.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(sctx); err != nil {
				log.Warn("flushing traces failed", "error", err)
			}
		}()
	}
	switch cmd {
	case "dev":
		return app.RunDev(ctx, cfg, log)
	case "service":
		reg, err := app.Registry(cfg)
		if err != nil {
			return err
		}
		return app.RunService(ctx, cfg, log, reg)
	case "api":
		reg, err := app.Registry(cfg)
		if err != nil {
			return err
		}
		ln, err := app.Listen(cfg.APIAddr, "USERSVC_API_ADDR")
		if err != nil {
			return err
		}
		go metricsListener(ctx, cfg, log)
		return app.RunAPI(ctx, cfg, log, reg, ln)
	case "gateway":
		reg, err := app.Registry(cfg)
		if err != nil {
			return err
		}
		ln, err := app.Listen(cfg.HTTPAddr, "USERSVC_HTTP_ADDR")
		if err != nil {
			return err
		}
		go metricsListener(ctx, cfg, log)
		return app.RunGateway(ctx, cfg, log, reg, ln)
	case "worker":
		return app.RunWorker(ctx, cfg, log)
	case "migrate":
		st, err := app.OpenStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(io.Stdout, "schema is up to date")
		}
		for _, v := range applied {
			fmt.Fprintln(io.Stdout, "applied", v)
		}
		return nil
	case "reindex":
		return reindex(ctx, cfg, io)
	case "healthcheck":
		return healthcheck(ctx, cfg, healthURL, io)
	case "admin create":
		return adminCreate(ctx, cfg, io, adminEmail, adminName)
	case "admin service-account create", "admin service-account revoke", "admin service-account list":
		return sa.run(ctx, cmd, cfg, io)
	case "certs generate":
		return certs.run(io)
	case "keys generate":
		k, err := token.GenerateKeyFile(cfg.JWTKeysDir)
		if err != nil {
			return err
		}
		fmt.Fprintln(io.Stdout, k)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (see usersvc --help)", errUsage, cmd)
}

// serving are the commands that run a server process, and so trace.
var serving = map[string]bool{"dev": true, "service": true, "api": true, "gateway": true, "worker": true}

// metricsListener serves /metrics (and /healthz) on the ops address of the
// api and gateway roles, whose probes are on their main listener.
func metricsListener(ctx context.Context, cfg *config.Config, log *slog.Logger) {
	if err := app.ServeMetrics(ctx, cfg, log); err != nil {
		log.Error("ops listener failed", "error", err)
	}
}

// adminCreate bootstraps an admin against the configured database. The
// password comes from standard input (first line), never from a flag, so it
// stays out of shell history and the process list.
func adminCreate(ctx context.Context, cfg *config.Config, io IO, email, name string) error {
	line, err := bufio.NewReader(io.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, os.ErrClosed) && line == "" {
		return fmt.Errorf("read password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	log := app.NewLogger(cfg, io.Stderr, app.ServiceName("cli"))
	core, err := app.NewCore(ctx, cfg, log, app.ModeTool)
	if err != nil {
		return err
	}
	defer core.Close()
	u, err := core.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: email, Password: pw, Name: name, Role: user.RoleAdmin})
	if err != nil {
		return err
	}
	fmt.Fprintln(io.Stdout, u.ID)
	return nil
}

// reindex rebuilds the search index from the database: Elasticsearch when
// configured, else the embedded index of the data dir (stop usersvc dev
// first: the embedded index is opened by one process at a time).
func reindex(ctx context.Context, cfg *config.Config, io IO) error {
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := app.PrepareSchema(ctx, cfg, st, app.NewLogger(cfg, io.Stderr, app.ServiceName("cli"))); err != nil {
		return err
	}
	idx, err := app.OpenSearch(ctx, cfg, app.ModeDev)
	if err != nil {
		return err
	}
	defer idx.Close()
	n, err := worker.Reindex(ctx, st, idx)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Stdout, "indexed %d users\n", n)
	return nil
}
