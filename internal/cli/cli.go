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
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

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
	"probe":    {"http_addr", "api_addr", "ops_addr"},
	"limits":   {"rate_"},
	"mfa":      {"mfa_", "require_admin_mfa", "reauth_window"},
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

// Run runs one command with args (without the program name). Help that
// was asked for goes to standard output with exit 0; a usage error goes to
// standard error with exit 2; a failure exits 1.
func Run(ctx context.Context, args []string, io IO) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(io.Stderr, topUsage())
		return 2
	case len(args) == 2 && args[0] == "help" && args[1] == "settings":
		fmt.Fprint(io.Stdout, "Settings (environment variable, flag, default):\n\n", config.Text())
		return 0
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprint(io.Stdout, topUsage())
		return 0
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version"):
		fmt.Fprintln(io.Stdout, buildinfo.String())
		return 0
	}
	c, rest, code := resolve(args, io)
	if code >= 0 {
		return code
	}
	if c.setup == nil { // version: it takes no flags but help
		if wantsHelp(rest) {
			fmt.Fprintf(io.Stdout, "usersvc %s: %s\n\nUsage: usersvc %s\n", c.name, c.summary, c.name)
			return 0
		}
		fmt.Fprintf(io.Stderr, "usersvc %s: unexpected arguments %q\n", c.name, rest)
		return 2
	}
	err := run(ctx, c, rest, io)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(io.Stderr, "usersvc %s: %s\n", c.name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintln(io.Stderr, "usersvc:", err)
		return 1
	}
}

// resolve finds the command args name, one, two or three words long
// ("api", "admin create", "admin service-account list"), and the rest of
// args. When it has already answered (a group's help, an unknown command),
// code is the exit code; otherwise it is -1.
func resolve(args []string, io IO) (c command, rest []string, code int) {
	name, rest := args[0], args[1:]
	for {
		if c, ok := find(name); ok {
			return c, rest, -1
		}
		group := false
		for _, c := range commands {
			group = group || strings.HasPrefix(c.name, name+" ")
		}
		switch {
		case !group:
			fmt.Fprintf(io.Stderr, "usersvc: unknown command %q (usersvc --help lists the commands)\n", name)
			return command{}, nil, 2
		case len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help"):
			fmt.Fprintf(io.Stdout, "Usage: usersvc %s <subcommand> [flags]\n\nSubcommands:\n", name)
			for _, c := range commands {
				if strings.HasPrefix(c.name, name+" ") {
					fmt.Fprintf(io.Stdout, "  %-30s %s\n", c.name, c.summary)
				}
			}
			return command{}, nil, 0
		case len(rest) == 0 || strings.HasPrefix(rest[0], "-"):
			fmt.Fprintf(io.Stderr, "usersvc %s: missing subcommand (usersvc %s --help lists them)\n", name, name)
			return command{}, nil, 2
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
}

var errUsage = errors.New("usage")

// run loads c's configuration from args and the environment and runs it.
func run(ctx context.Context, c command, args []string, io IO) error {
	var runIt runner
	spec := config.Command{Name: c.name, Summary: c.summary, Flags: flagsOf(c.groups)}
	if c.setup != nil {
		spec.Extra = func(fs *flag.FlagSet) { runIt = c.setup(fs) }
	}
	out := io.Stderr
	if wantsHelp(args) {
		out = io.Stdout // asked for: help is the output, not an error
	}
	cfg, rest, err := config.LoadCommand(spec, args, io.Getenv, out)
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
	var needs []string
	if c.needs != nil {
		needs = c.needs(cfg)
	}
	if err := cfg.Require(needs...); err != nil { // also checks what every command needs
		return err
	}
	log := app.NewLogger(cfg, io.Stderr, telemetry.ServiceName(app.ServiceName(c.name)))
	app.UseLogger(log)
	if c.serves {
		tr, err := app.SetupTracing(ctx, app.ServiceName(c.name), log)
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
	return runIt(ctx, cfg, log, io)
}

// wantsHelp reports whether args ask for a command's help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "-h=true", "--help=true":
			return true
		case "--":
			return false
		}
	}
	return false
}

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

// openSchemaStore opens the database of a tool command with its schema
// checked (or, on the embedded default, migrated) as the roles do.
func openSchemaStore(ctx context.Context, cfg *config.Config, io IO) (*sqlstore.Store, error) {
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := app.PrepareSchema(ctx, cfg, st, app.NewLogger(cfg, io.Stderr, app.ServiceName("cli"))); err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}

// reindex rebuilds the search index from the database: Elasticsearch when
// configured, else the embedded index of the data dir (stop usersvc dev
// first: the embedded index is opened by one process at a time).
func reindex(ctx context.Context, cfg *config.Config, io IO) error {
	st, err := openSchemaStore(ctx, cfg, io)
	if err != nil {
		return err
	}
	defer st.Close()
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
