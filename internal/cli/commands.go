package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/usersvc/usersvc/internal/app"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user/mfa"
)

// command is one row of the command table: `usersvc --help`, `usersvc CMD
// --help`, the flags a command takes and the dispatch all read it, so a new
// command is one row here.
type command struct {
	name, summary string
	// groups are the groups of settings it takes as flags (see groups);
	// nil = every setting.
	groups []string
	// serves marks a server process: it traces, and runs until stopped.
	serves bool
	// setup defines the command's own flags, if any, and returns what runs
	// it once they are parsed.
	setup func(fs *flag.FlagSet) runner
	// needs lists settings it cannot run without, beyond those every
	// command checks.
	needs func(cfg *config.Config) []string
}

// runner runs a command with its configuration, logger and streams.
type runner func(ctx context.Context, cfg *config.Config, log *slog.Logger, io IO) error

// just is the setup of a command without flags of its own.
func just(r runner) func(*flag.FlagSet) runner { return func(*flag.FlagSet) runner { return r } }

var commands = []command{
	{name: "dev", summary: "gateway + API + service + worker in one process, on embedded defaults (SQLite, in-process registry, bus and index)",
		serves: true, setup: just(func(ctx context.Context, cfg *config.Config, log *slog.Logger, _ IO) error {
			return app.RunDev(ctx, cfg, log)
		})},
	{name: "gateway", summary: "the HTTP gateway: routes to the API instances it finds in etcd",
		groups: []string{"gateway", "registry", "http", "ops"}, serves: true, setup: just(httpRole(func(c *config.Config) string { return c.HTTPAddr }, "USERSVC_HTTP_ADDR", app.RunGateway))},
	{name: "api", summary: "the HTTP API (gin): calls the user service over gRPC",
		groups: []string{"api", "registry", "http", "redis", "limits", "ops"}, serves: true, setup: just(httpRole(func(c *config.Config) string { return c.APIAddr }, "USERSVC_API_ADDR", app.RunAPI))},
	{name: "service", summary: "the user service (gRPC, registered in etcd): owns the data and the rules",
		groups: []string{"service", "registry", "store", "tokens", "password", "mfa", "mail", "redis", "events", "search", "ops"}, serves: true,
		setup: just(runService),
		// Without RabbitMQ it mails itself, and links must point where
		// users reach the gateway, not at its own address.
		needs: func(cfg *config.Config) []string {
			if cfg.RabbitMQURL == "" {
				return []string{"public_url"}
			}
			return nil
		}},
	{name: "worker", summary: "consumes user events from RabbitMQ: sends reset mail, keeps the search index current",
		groups: []string{"store", "mail", "events", "search", "ops", "registry"}, serves: true,
		setup: just(func(ctx context.Context, cfg *config.Config, log *slog.Logger, _ IO) error {
			return app.RunWorker(ctx, cfg, log)
		}),
		needs: func(*config.Config) []string { return []string{"public_url"} }},
	{name: "migrate", summary: "apply the database migrations (an operator decides when the schema changes)",
		groups: []string{"store"}, setup: just(migrate)},
	{name: "reindex", summary: "rebuild the search index (Elasticsearch, or the embedded one of the data dir) from the database",
		groups: []string{"store", "search"}, setup: just(func(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
			return reindex(ctx, cfg, io)
		})},
	{name: "admin create", summary: "create an admin account; the password is read from the first line of standard input",
		groups: []string{"store", "tokens", "password"}, setup: adminCreateSetup},
	{name: "keys generate", summary: "write a new Ed25519 signing key (<kid>.pem) to the keys directory",
		groups: []string{"keys"}, setup: just(func(_ context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
			k, err := token.GenerateKeyFile(cfg.JWTKeysDir)
			if err == nil {
				fmt.Fprintln(io.Stdout, k)
			}
			return err
		})},
	{name: "admin service-account create", summary: "create a service account (--name, --scopes); prints its client id and secret once",
		groups: []string{"store", "tokens", "password"}, setup: serviceAccountSetup("admin service-account create")},
	{name: "admin service-account list", summary: "list the service accounts",
		groups: []string{"store"}, setup: serviceAccountSetup("admin service-account list")},
	{name: "admin service-account revoke", summary: "revoke a service account (--id)",
		groups: []string{"store"}, setup: serviceAccountSetup("admin service-account revoke")},
	{name: "mfa reseal", summary: "re-encrypt every stored second-factor secret under the current USERSVC_MFA_KEY_ID, after a key rotation; then the old key can go",
		groups: []string{"store", "mfa"}, setup: just(mfaReseal),
		needs: func(*config.Config) []string { return []string{"mfa_keys"} }},
	{name: "certs generate", summary: "write a development CA and gRPC server/client certificates (--dir)",
		groups: []string{}, setup: func(fs *flag.FlagSet) runner {
			var f certsFlags
			f.define(fs)
			return func(_ context.Context, _ *config.Config, _ *slog.Logger, io IO) error { return f.run(io) }
		}},
	{name: "healthcheck", summary: "exit 0 if the role's /healthz answers 200 (container health check; --url)",
		groups: []string{"probe"}, setup: func(fs *flag.FlagSet) runner {
			url := fs.String("url", "", "URL to probe; default the /healthz of the configured listeners")
			return func(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
				return healthcheck(ctx, cfg, *url, io)
			}
		}},
	{name: "version", summary: "print the version and commit of this binary", groups: []string{}},
}

// find is the command named name ("admin create"), if there is one.
func find(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func runService(ctx context.Context, cfg *config.Config, log *slog.Logger, _ IO) error {
	reg, err := app.Registry(cfg)
	if err != nil {
		return err
	}
	defer closeRegistry(reg, log)
	return app.RunService(ctx, cfg, log, reg)
}

// closeRegistry closes a role's registry connections once the role has
// stopped (deregistered, no more lookups).
func closeRegistry(reg rpc.Registry, log *slog.Logger) {
	if c, ok := reg.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			log.Warn("closing the registry client", "error", err)
		}
	}
}

// httpRole runs an HTTP role (api, gateway) on the listener of its
// address setting (env names it in errors), with its ops listener beside
// it for /metrics.
func httpRole(addr func(*config.Config) string, env string,
	serve func(context.Context, *config.Config, *slog.Logger, rpc.Registry, net.Listener) error) runner {
	return func(ctx context.Context, cfg *config.Config, log *slog.Logger, _ IO) error {
		reg, err := app.Registry(cfg)
		if err != nil {
			return err
		}
		defer closeRegistry(reg, log)
		ln, err := app.Listen(addr(cfg), env)
		if err != nil {
			return err
		}
		go metricsListener(ctx, cfg, log)
		return serve(ctx, cfg, log, reg, ln)
	}
}

func migrate(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
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
}

// mfaReseal moves every factor secret to the current key.
func mfaReseal(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
	keys, err := cfg.MFAKeyring()
	if err != nil {
		return err
	}
	st, err := openSchemaStore(ctx, cfg, io)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := mfa.Reseal(ctx, st, keys)
	fmt.Fprintf(io.Stdout, "re-encrypted %d second-factor secrets under key %s\n", n, keys.Current())
	return err
}

func adminCreateSetup(fs *flag.FlagSet) runner {
	email := fs.String("email", "", "email of the new admin (required)")
	name := fs.String("name", "Administrator", "display name of the new admin")
	return func(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
		if *email == "" {
			return fmt.Errorf("%w: admin create needs --email", errUsage)
		}
		return adminCreate(ctx, cfg, io, *email, *name)
	}
}

func serviceAccountSetup(cmd string) func(*flag.FlagSet) runner {
	return func(fs *flag.FlagSet) runner {
		var f serviceAccountFlags
		f.define(cmd)(fs)
		return func(ctx context.Context, cfg *config.Config, _ *slog.Logger, io IO) error {
			return f.run(ctx, cmd, cfg, io)
		}
	}
}
