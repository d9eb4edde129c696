package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/app"
	"github.com/usersvc/usersvc/internal/cli"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// These tests run the command line in-process through cli.Run, against a
// fresh data dir (embedded SQLite, keys, search index) per test. They do not
// run in parallel: every command installs its logger as go-micro's global
// one (rpc.UseLogger).

const goodPassword = "correct horse battery staple"

// env is the process environment a command sees, through IO.Getenv.
type env map[string]string

// newEnv returns an environment with its own data dir and cheap argon2id.
func newEnv(t *testing.T) env {
	t.Helper()
	return env{
		"USERSVC_DATA_DIR":          filepath.Join(t.TempDir(), "data"),
		"USERSVC_ARGON2_MEMORY_KIB": "64",
		"USERSVC_ARGON2_ITERATIONS": "1",
		"USERSVC_LOG_LEVEL":         "error",
	}
}

func (e env) getenv(k string) string { return e[k] }

type result struct {
	code           int
	stdout, stderr string
}

// run runs one command line with stdin as standard input.
func run(t *testing.T, e env, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Run(ctx, args, cli.IO{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Getenv: e.getenv})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// expect fails the test unless r exited with code and its stderr contains
// every one of inStderr.
func expect(t *testing.T, r result, code int, inStderr ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\n%s", r.code, code, r)
		return
	}
	for _, s := range inStderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q\n%s", s, r)
		}
	}
}

// openCore builds the service on the env's data dir, as the tools do.
func openCore(t *testing.T, e env) *app.Core {
	t.Helper()
	cfg, rest, err := config.Load("test", nil, e.getenv, io.Discard)
	if err != nil || len(rest) > 0 {
		t.Fatalf("config: %v %v", err, rest)
	}
	core, err := app.NewCore(t.Context(), cfg, slog.New(slog.DiscardHandler), app.ModeTool)
	if err != nil {
		t.Fatalf("core: %v", err)
	}
	t.Cleanup(func() { _ = core.Close() })
	return core
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUsage(t *testing.T) {
	e := newEnv(t)
	r := run(t, e, "")
	expect(t, r, 2, "Usage:", "migrate", "admin create", "keys generate", "usersvc <command> --help", "help settings")
	if r.stdout != "" {
		t.Errorf("usage written to stdout: %q", r.stdout)
	}
	if strings.Contains(r.stderr, "|") {
		t.Errorf("top-level help holds a Markdown table:\n%s", r.stderr)
	}
	for _, help := range []string{"--help", "-h", "help"} {
		r := run(t, e, "", help)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "reindex") || r.stderr != "" {
			t.Errorf("usersvc %s: help asked for goes to stdout with exit 0:\n%s", help, r)
		}
	}
	for _, v := range []string{"--version", "version"} {
		if r := run(t, e, "", v); r.code != 0 || !strings.HasPrefix(r.stdout, "usersvc ") || !strings.Contains(r.stdout, "commit ") {
			t.Errorf("usersvc %s:\n%s", v, r)
		}
	}
	if r := run(t, e, "", "version", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: usersvc version") || r.stderr != "" {
		t.Errorf("usersvc version --help: its usage on stdout with exit 0:\n%s", r)
	}
	if r := run(t, e, "", "version", "now"); r.code != 2 || !strings.Contains(r.stderr, `unexpected arguments ["now"]`) {
		t.Errorf("usersvc version now: a usage error:\n%s", r)
	}
	r = run(t, e, "", "help", "settings")
	if r.code != 0 || !strings.Contains(r.stdout, "USERSVC_ACCESS_TTL, --access-ttl (default 15m)") {
		t.Errorf("help settings:\n%s", r)
	}
	if _, err := os.Stat(e["USERSVC_DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("usage touched the data dir: %v", err)
	}
}

// TestCommandLineMistakes: an unknown command or flag exits 2 with a short
// message and a hint, whatever follows it (even --help).
func TestCommandLineMistakes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus", "--help"}, `unknown command "bogus"`},
		{[]string{"migrate", "--bogus"}, "flag provided but not defined: -bogus (usersvc migrate --help lists its flags)"},
		{[]string{"api", "--mysql-dsn", "x"}, "flag provided but not defined: -mysql-dsn"},
		{[]string{"admin", "--bogus"}, "missing subcommand"},
	} {
		r := run(t, e, "", tc.args...)
		expect(t, r, 2, tc.want)
		if n := strings.Count(r.stderr, "\n"); n > 5 {
			t.Errorf("%v: %d lines on stderr, want a short message:\n%s", tc.args, n, r.stderr)
		}
	}
	r := run(t, e, "", "admin", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "admin create") || !strings.Contains(r.stdout, "standard input") {
		t.Errorf("admin --help: the subcommands on stdout with exit 0:\n%s", r)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"admin"}, "missing subcommand"},
		{[]string{"keys"}, "missing subcommand"},
		{[]string{"admin", "delete"}, `unknown command "admin delete"`},
		{[]string{"keys", "rotate"}, `unknown command "keys rotate"`},
		{[]string{"migrate", "now"}, `unexpected arguments ["now"]`},
		{[]string{"admin", "create"}, "needs --email"},
		{[]string{"admin", "create", "--name", "Root"}, "needs --email"},
		{[]string{"admin", "create", "--email="}, "needs --email"},
	} {
		r := run(t, e, goodPassword+"\n", tc.args...)
		expect(t, r, 2, tc.want)
		if r.stdout != "" {
			t.Errorf("%v wrote to stdout: %q", tc.args, r.stdout)
		}
	}
	if _, err := os.Stat(e["USERSVC_DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a usage error touched the data dir: %v", err)
	}
}

func TestBadSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"env duration", map[string]string{"USERSVC_ACCESS_TTL": "soon"}, []string{"migrate"}, "USERSVC_ACCESS_TTL"},
		{"env choice", map[string]string{"USERSVC_LOG_LEVEL": "loud"}, []string{"migrate"}, "USERSVC_LOG_LEVEL"},
		{"env integer", map[string]string{"USERSVC_ARGON2_ITERATIONS": "many"}, []string{"admin", "create", "--email", "a@example.com"}, "USERSVC_ARGON2_ITERATIONS"},
		{"flag", nil, []string{"admin", "create", "--email", "a@example.com", "--access-ttl=soon"}, "--access-ttl"},
		{"public url", map[string]string{"USERSVC_PUBLIC_URL": "ftp://example.com"}, []string{"migrate"}, "USERSVC_PUBLIC_URL"},
		{"malformed dsn", map[string]string{"USERSVC_MYSQL_DSN": "u:secret@tcp(127.0.0.1:3306"}, []string{"migrate"}, "MySQL (USERSVC_MYSQL_DSN)"},
		// The roles that mail links refuse to guess where users reach the
		// gateway: their own address would be wrong.
		{"worker without public url", map[string]string{"USERSVC_RABBITMQ_URL": "amqp://127.0.0.1:1/"}, []string{"worker"}, "USERSVC_PUBLIC_URL (--public-url) is required"},
		{"service without public url", map[string]string{"USERSVC_ETCD_ENDPOINTS": "127.0.0.1:1"}, []string{"service"}, "USERSVC_PUBLIC_URL (--public-url) is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tc.env {
				e[k] = v
			}
			r := run(t, e, goodPassword+"\n", tc.args...)
			expect(t, r, 1, tc.want)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(e["USERSVC_DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the command ran despite the bad setting: data dir %v", err)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	e := newEnv(t)
	r := run(t, e, "", "migrate")
	expect(t, r, 0)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.stdout == "" || len(lines) == 0 {
		t.Fatalf("first migrate printed nothing\n%s", r)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^applied \d{4}_\w+$`).MatchString(l) {
			t.Errorf("first migrate printed %q, want \"applied <version>\" lines", l)
		}
	}
	if lines[0] != "applied 0001_init" {
		t.Errorf("first migration applied is %q, want the initial schema first", lines[0])
	}
	if r.stderr != "" {
		t.Errorf("stderr at log level error: %q", r.stderr)
	}

	r = run(t, e, "", "migrate")
	expect(t, r, 0)
	if r.stdout != "schema is up to date\n" {
		t.Errorf("second migrate printed %q, want \"schema is up to date\"", r.stdout)
	}

	// --data-dir wins over the environment: another dir starts empty.
	other := filepath.Join(t.TempDir(), "other")
	r = run(t, e, "", "migrate", "--data-dir", other)
	expect(t, r, 0)
	if r.stdout != strings.Join(lines, "\n")+"\n" {
		t.Errorf("migrate --data-dir %s printed %q, want the same migrations as the first run", other, r.stdout)
	}
}

func TestKeysGenerate(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "keys")
	r := run(t, e, "", "keys", "generate", "--jwt-keys-dir", dir)
	expect(t, r, 0)
	kid := strings.TrimSpace(r.stdout)
	if kid == "" || r.stdout != kid+"\n" {
		t.Fatalf("keys generate printed %q, want one kid line", r.stdout)
	}
	path := filepath.Join(dir, kid+".pem")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600 (it is a private key)", perm)
	}
	kr, err := token.LoadDir(dir, kid, false)
	if err != nil {
		t.Fatalf("the generated key does not load: %v", err)
	}
	if kr.SigningKeyID() != kid {
		t.Errorf("signing key %q, want %q", kr.SigningKeyID(), kid)
	}

	// Through the environment, into the same dir: a second, different key.
	e["USERSVC_JWT_KEYS_DIR"] = dir
	r = run(t, e, "", "keys", "generate")
	expect(t, r, 0)
	kid2 := strings.TrimSpace(r.stdout)
	if kid2 == "" || kid2 == kid {
		t.Fatalf("second keys generate printed %q (first %q), want a new kid", kid2, kid)
	}
	pems, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil || len(pems) != 2 {
		t.Errorf("key dir holds %v (%v), want two keys", pems, err)
	}
	if _, err := token.LoadDir(dir, kid2, false); err != nil {
		t.Errorf("the second key does not load: %v", err)
	}
}

func TestAdminCreate(t *testing.T) {
	e := newEnv(t)
	const email = "a@example.com"
	r := run(t, e, goodPassword+"\n", "admin", "create", "--email", email)
	expect(t, r, 0)
	id := strings.TrimSpace(r.stdout)
	if !uuidRE.MatchString(id) || r.stdout != id+"\n" {
		t.Fatalf("admin create printed %q, want the new user's ID", r.stdout)
	}

	// Same email again: refused, and the first admin is untouched.
	r = run(t, e, "another fine passphrase\n", "admin", "create", "--email", email)
	if r.code == 0 {
		t.Errorf("second admin create with the same email succeeded\n%s", r)
	}
	expect(t, r, r.code, "already exists")

	// Weak passwords are refused with the policy's reason; no user is created.
	r = run(t, e, "password\n", "admin", "create", "--email", "weak@example.com")
	if r.code == 0 {
		t.Errorf("admin create with a weak password succeeded\n%s", r)
	}
	expect(t, r, r.code, "password", "too common or too easy to guess")
	r = run(t, e, "kV9#\n", "admin", "create", "--email", "short@example.com")
	if r.code == 0 {
		t.Errorf("admin create with a short password succeeded\n%s", r)
	}
	expect(t, r, r.code, "must be at least 8 characters")
	r = run(t, e, "", "admin", "create", "--email", "nopw@example.com")
	if r.code == 0 {
		t.Errorf("admin create without a password on stdin succeeded\n%s", r)
	}
	expect(t, r, r.code, "standard input")

	// Only the first line is the password; CRLF is stripped; --email=
	// and --name work, also after shared settings.
	r = run(t, e, "another fine passphrase\r\nnot the password\n",
		"admin", "create", "--log-level", "error", "--email=carol@example.com", "--name", "Carol Root")
	expect(t, r, 0)
	carolID := strings.TrimSpace(r.stdout)
	// The last line may lack its newline.
	r = run(t, e, "yet another fine passphrase", "admin", "create", "--email", "dave@example.com")
	expect(t, r, 0)

	core := openCore(t, e)
	ctx := t.Context()
	for _, tc := range []struct {
		email, id, name, pw string
	}{
		{email, id, "Administrator", goodPassword},
		{"carol@example.com", carolID, "Carol Root", "another fine passphrase"},
		{"dave@example.com", "", "Administrator", "yet another fine passphrase"},
	} {
		u, err := core.Store.UserByEmail(ctx, tc.email)
		if err != nil {
			t.Errorf("%s: %v", tc.email, err)
			continue
		}
		if (tc.id != "" && u.ID != tc.id) || u.Role != user.RoleAdmin || u.Name != tc.name || u.Status != user.StatusActive {
			t.Errorf("%s stored as %+v, want active admin %q with ID %s", tc.email, u, tc.name, tc.id)
		}
		if _, err := core.Service.Auth(ctx, tc.email, tc.pw); err != nil {
			t.Errorf("%s cannot log in with the password given on stdin: %v", tc.email, err)
		}
	}
	if _, err := core.Service.Auth(ctx, email, "another fine passphrase"); !errors.Is(err, user.ErrBadCredentials) {
		t.Errorf("the refused second create changed the first admin's password: %v", err)
	}
	for _, missing := range []string{"weak@example.com", "short@example.com", "nopw@example.com"} {
		if _, err := core.Store.UserByEmail(ctx, missing); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("%s: %v, want not found", missing, err)
		}
	}
}

func TestReindex(t *testing.T) {
	e := newEnv(t)
	emails := []string{"one@example.com", "two@example.com", "three@example.com"}
	for _, em := range emails {
		r := run(t, e, goodPassword+"\n", "admin", "create", "--email", em)
		expect(t, r, 0)
	}
	r := run(t, e, "", "reindex")
	expect(t, r, 0)
	if r.stdout != "indexed 3 users\n" {
		t.Errorf("reindex printed %q, want \"indexed 3 users\"", r.stdout)
	}
	r = run(t, e, "", "reindex")
	expect(t, r, 0)
	if r.stdout != "indexed 3 users\n" {
		t.Errorf("second reindex printed %q, want \"indexed 3 users\"", r.stdout)
	}

	// The embedded index of the data dir, as usersvc dev opens it, now
	// holds them.
	cfg, _, err := config.Load("test", nil, e.getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := app.OpenSearch(t.Context(), cfg, app.ModeDev)
	if err != nil {
		t.Fatalf("open the dev index: %v", err)
	}
	defer idx.Close()
	res, err := idx.Search(t.Context(), search.Query{Text: "two@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total < 1 {
		t.Errorf("two@example.com not in the index: %+v", res)
	}
	all, err := idx.Search(t.Context(), search.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != 3 {
		t.Errorf("index holds %d users, want 3", all.Total)
	}
}

// TestReindexFreshDataDir: like every other command that uses the embedded
// database (dev, admin create, worker), reindex prepares its schema first,
// so on a data dir nothing has used yet it indexes no users rather than
// failing on a missing table.
func TestReindexFreshDataDir(t *testing.T) {
	e := newEnv(t)
	r := run(t, e, "", "reindex")
	expect(t, r, 0)
	if r.stdout != "indexed 0 users\n" {
		t.Errorf("reindex of a fresh data dir printed %q, want \"indexed 0 users\"", r.stdout)
	}
	// Afterwards the database is usable as usual.
	r = run(t, e, "", "migrate")
	expect(t, r, 0)
	if r.stdout != "schema is up to date\n" {
		t.Errorf("migrate after reindex printed %q, want \"schema is up to date\"", r.stdout)
	}
}

// TestSubcommandHelp: --help after a command exits 0 and prints that
// command's flags, and only those, to stdout (help asked for is output,
// not an error); admin create lists its own flags too.
func TestSubcommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"migrate", "--help"}, []string{"apply the database migrations", "Usage: usersvc migrate [flags]", "--data-dir (default ./data)", "--mysql-dsn", "USERSVC_MYSQL_DSN"}},
		{[]string{"keys", "generate", "-h"}, []string{"--jwt-keys-dir"}},
		{[]string{"reindex", "--help"}, []string{"--data-dir", "--elasticsearch-url"}},
		{[]string{"admin", "create", "--help"}, []string{"--email", "--name (default Administrator)", "--data-dir"}},
		{[]string{"api", "--help"}, []string{"--api-addr (default 127.0.0.1:8081)", "--etcd-endpoints", "--rate-login-ip", "--ops-addr"}},
		{[]string{"gateway", "--help"}, []string{"--http-addr (default 127.0.0.1:8080)", "--etcd-endpoints", "--ops-addr"}},
		{[]string{"healthcheck", "--help"}, []string{"--url", "--http-addr", "--api-addr", "--ops-addr"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			e := newEnv(t)
			r := run(t, e, "", tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and help on stdout", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			// Only the command's own flags: the gateway has no database,
			// migrate no HTTP listener, healthcheck only its listeners.
			if tc.args[0] == "gateway" && strings.Contains(r.stdout, "--mysql-dsn") ||
				tc.args[0] == "migrate" && strings.Contains(r.stdout, "--http-addr") ||
				tc.args[0] == "healthcheck" && strings.Contains(r.stdout, "--mysql-dsn") {
				t.Errorf("help lists flags of other commands:\n%s", r.stdout)
			}
			if _, err := os.Stat(e["USERSVC_DATA_DIR"]); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("--help ran the command: data dir %v", err)
			}
		})
	}
}
