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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/usersvc/usersvc/internal/app"
	"github.com/usersvc/usersvc/internal/buildinfo"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

// commands is every command with its one-line summary and the settings it
// takes as flags (groups below). `usersvc --help`, `usersvc CMD --help` and
// the unknown-command check all read it: a new command needs a row here.
var commands = []struct {
	name, summary string
	groups        []string // nil = every setting
}{
	{"dev", "gateway + API + service + worker in one process, on embedded defaults (SQLite, in-process registry, bus and index)", nil},
	{"gateway", "the HTTP gateway: routes to the API instances it finds in etcd", []string{"gateway", "registry", "http", "ops"}},
	{"api", "the HTTP API (gin): calls the user service over gRPC", []string{"api", "registry", "http", "redis", "limits", "ops"}},
	{"service", "the user service (gRPC, registered in etcd): owns the data and the rules", []string{"service", "registry", "store", "tokens", "password", "mail", "redis", "events", "search", "ops"}},
	{"worker", "consumes user events from RabbitMQ: sends reset mail, keeps the search index current", []string{"store", "mail", "events", "search", "ops", "registry"}},
	{"migrate", "apply the database migrations (an operator decides when the schema changes)", []string{"store"}},
	{"reindex", "rebuild the search index (Elasticsearch, or the embedded one of the data dir) from the database", []string{"store", "search"}},
	{"admin create", "create an admin account; the password is read from the first line of standard input", []string{"store", "tokens", "password"}},
	{"keys generate", "write a new Ed25519 signing key (<kid>.pem) to the keys directory", []string{"keys"}},
	{"admin service-account create", "create a service account (--name, --scopes); prints its client id and secret once", []string{"store", "tokens", "password"}},
	{"admin service-account list", "list the service accounts", []string{"store"}},
	{"admin service-account revoke", "revoke a service account (--id)", []string{"store"}},
	{"certs generate", "write a development CA and gRPC server/client certificates (--dir)", []string{}},
	{"healthcheck", "exit 0 if the role's /healthz answers 200 (container health check; --url)", nil},
	{"version", "print the version and commit of this binary", []string{}},
}

// groups maps a group to the settings (keys, or prefixes ending in _) in it.
// Settings in no group are offered by every command, so a setting added
// without a group still works everywhere.
var groups = map[string][]string{
	"gateway":  {"http_addr"},
	"api":      {"api_addr", "rpc_timeout"},
	"service":  {"grpc_addr"},
	"registry": {"etcd_endpoints", "registry_ttl", "shutdown_timeout"},
	"http":     {"max_body_bytes"},
	"store":    {"data_dir", "mysql_dsn"},
	"keys":     {"data_dir", "jwt_keys_dir"},
	"tokens":   {"jwt_", "access_ttl", "refresh_ttl", "refresh_reuse_grace", "reset_ttl", "data_dir"},
	"password": {"argon2_", "hash_", "password_min_score"},
	"mail":     {"smtp_", "mail_", "public_url"},
	"redis":    {"redis_url", "namespace"},
	"events":   {"rabbitmq_url", "namespace"},
	"search":   {"elasticsearch_"},
	"ops":      {"ops_addr"},
	"limits":   {"rate_"},
}

func inGroup(key, member string) bool {
	if strings.HasSuffix(member, "_") {
		return strings.HasPrefix(key, member)
	}
	return key == member
}

// flagsOf returns the filter of settings a command takes as flags.
func flagsOf(names []string) func(string) bool {
	if names == nil {
		return nil
	}
	return func(key string) bool {
		grouped := false
		for g, members := range groups {
			for _, m := range members {
				if inGroup(key, m) {
					grouped = true
					if slices.Contains(names, g) {
						return true
					}
				}
			}
		}
		return !grouped
	}
}

func topUsage() string {
	var b strings.Builder
	b.WriteString("usersvc: a user service (accounts, tokens, password reset) on go-micro.\n\nUsage: usersvc <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-30s %s\n", c.name, c.summary)
	}
	b.WriteString(`
Run 'usersvc <command> --help' for a command's flags, 'usersvc help settings'
for every setting. Settings come from flags, USERSVC_* environment variables
or a YAML file (--config); flags win over the environment, the environment
over the file.
`)
	return b.String()
}

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
		if len(args) == 2 && args[0] == "help" && args[1] == "settings" {
			fmt.Fprint(io.Stdout, "Settings (environment variable, flag, default):\n\n", config.Text())
			return 0
		}
		fmt.Fprint(io.Stderr, topUsage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "version" && len(rest) == 0 {
		fmt.Fprintln(io.Stdout, buildinfo.String())
		return 0
	}
	if cmd == "admin" && len(rest) > 0 && rest[0] == "service-account" {
		cmd, rest = "admin service-account", rest[1:]
	}
	if cmd == "admin" || cmd == "keys" || cmd == "certs" || cmd == "admin service-account" {
		if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help") {
			fmt.Fprintf(io.Stderr, "Usage: usersvc %s <subcommand> [flags]\n\nSubcommands:\n", cmd)
			for _, c := range commands {
				if strings.HasPrefix(c.name, cmd+" ") {
					fmt.Fprintf(io.Stderr, "  %-30s %s\n", c.name, c.summary)
				}
			}
			return 0
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintf(io.Stderr, "usersvc %s: missing subcommand (usersvc %s --help lists them)\n", cmd, cmd)
			return 2
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	spec, ok := lookup(cmd)
	if !ok {
		fmt.Fprintf(io.Stderr, "usersvc: unknown command %q (usersvc --help lists the commands)\n", cmd)
		return 2
	}
	err := run(ctx, spec, rest, io)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(io.Stderr, "usersvc %s: %s\n", cmd, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintln(io.Stderr, "usersvc:", err)
		return 1
	}
}

// required lists the settings a command cannot run without beyond those
// every command checks: the roles that mail links must be told where users
// reach the gateway (defaulting to their own address mailed links to
// themselves).
func required(cmd string, cfg *config.Config) []string {
	switch {
	case cmd == "worker", cmd == "service" && cfg.RabbitMQURL == "":
		return []string{"public_url"}
	}
	return nil
}

func lookup(name string) (config.Command, bool) {
	for _, c := range commands {
		if c.name == name {
			return config.Command{Name: c.name, Summary: c.summary, Flags: flagsOf(c.groups)}, true
		}
	}
	return config.Command{}, false
}

var errUsage = errors.New("usage")

func run(ctx context.Context, spec config.Command, args []string, io IO) error {
	cmd := spec.Name
	var adminEmail, adminName, healthURL string
	var sa serviceAccountFlags
	var certs certsFlags
	switch cmd {
	case "admin create":
		spec.Extra = func(fs *flag.FlagSet) {
			fs.StringVar(&adminEmail, "email", "", "email of the new admin (required)")
			fs.StringVar(&adminName, "name", "Administrator", "display name of the new admin")
		}
	case "healthcheck":
		spec.Extra = func(fs *flag.FlagSet) {
			fs.StringVar(&healthURL, "url", "", "URL to probe; default the /healthz of the configured listeners")
		}
	case "admin service-account create", "admin service-account revoke", "admin service-account list":
		spec.Extra = sa.define(cmd)
	case "certs generate":
		spec.Extra = certs.define
	}
	cfg, rest, err := config.LoadCommand(spec, args, io.Getenv, io.Stderr)
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
	if err := cfg.Require(required(cmd, cfg)...); err != nil {
		return err
	}
	log := app.NewLogger(cfg, io.Stderr, telemetry.ServiceName(app.ServiceName(cmd)))
	app.UseLogger(log)
	if serving[cmd] {
		tr, err := app.SetupTracing(ctx, app.ServiceName(cmd), log)
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
	case "healthcheck":
		return healthcheck(ctx, cfg, healthURL, io)
	case "admin service-account create", "admin service-account revoke", "admin service-account list":
		return sa.run(ctx, cmd, cfg, io)
	case "certs generate":
		return certs.run(io)
	case "reindex":
		return reindex(ctx, cfg, io)
	case "admin create":
		return adminCreate(ctx, cfg, io, adminEmail, adminName)
	case "keys generate":
		k, err := token.GenerateKeyFile(cfg.JWTKeysDir)
		if err != nil {
			return err
		}
		fmt.Fprintln(io.Stdout, k)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (usersvc --help lists the commands)", errUsage, cmd)
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
