// Package app is the composition root: it builds every role of usersvc
// (service, api, gateway, dev) from the configuration, and runs each until
// its context ends, then shuts it down gracefully. Only here do the domain,
// storage, transports and the framework meet.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/search"
	"github.com/usersvc/usersvc/internal/search/bleveindex"
	"github.com/usersvc/usersvc/internal/search/elastic"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// NewLogger returns the process's logger: JSON lines with ECS field names
// (@timestamp, log.level, message, service.name, trace.id, span.id,
// transaction.id — see telemetry.NewJSONLogger), so Filebeat or the OTel
// Collector need no parsing rules; or plain text for a terminal. service is
// the service.name every line carries.
func NewLogger(cfg *config.Config, w io.Writer, service string) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	if cfg.LogFormat == "text" {
		l := slog.New(telemetry.ContextHandler{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})})
		return l.With(telemetry.FieldServiceName, service)
	}
	return telemetry.NewJSONLogger(w, level, service)
}

// Embedded reports whether the configuration uses the embedded SQLite
// database (no MySQL DSN).
func Embedded(cfg *config.Config) bool { return cfg.MySQLDSN == "" }

// OpenStore opens MySQL when a DSN is configured, else SQLite in the data dir.
func OpenStore(ctx context.Context, cfg *config.Config) (*sqlstore.Store, error) {
	if !Embedded(cfg) {
		st, err := sqlstore.Open(ctx, "mysql", cfg.MySQLDSN)
		if err != nil {
			return nil, fmt.Errorf("MySQL%s (USERSVC_MYSQL_DSN): %w", mysqlAddr(cfg.MySQLDSN), err)
		}
		return st, nil
	}
	db := filepath.Join(cfg.DataDir, "usersvc.db")
	if err := privateDataFiles(cfg.DataDir, db); err != nil {
		return nil, fmt.Errorf("data dir %s (USERSVC_DATA_DIR): %w", cfg.DataDir, err)
	}
	return sqlstore.Open(ctx, "sqlite", db)
}

// privateDataFiles makes the data dir 0700 and the database 0600 before
// SQLite opens it, as the keys and mails are: the database holds password
// hashes and emails. SQLite creates the database 0644 (under the usual
// umask) and gives its WAL and shared-memory files the database's mode, so
// creating the file first is enough for new ones; files an older version
// left readable are tightened too.
func privateDataFiles(dir, db string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, name := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// mysqlAddr is " at host:port" of a DSN, for errors (never the password),
// or "" when the DSN does not parse.
func mysqlAddr(dsn string) string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil || c.Addr == "" {
		return ""
	}
	return " at " + c.Addr
}

// PrepareSchema migrates the embedded database automatically; a MySQL
// database must be migrated by `usersvc migrate` first (an operator decides
// when a shared schema changes), so here it is only checked.
func PrepareSchema(ctx context.Context, cfg *config.Config, st *sqlstore.Store, log *slog.Logger) error {
	if Embedded(cfg) {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "versions", applied)
		}
		return nil
	}
	pending, err := st.PendingMigrations(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	if len(pending) > 0 {
		return fmt.Errorf("database schema is behind (pending %s): run `usersvc migrate` first", strings.Join(pending, ", "))
	}
	return nil
}

// LoadKeys loads the signing keys. The embedded default generates one on
// first start; a shared deployment must provision the same keys to every
// instance (`usersvc keys generate`), so a missing key there is an error
// rather than a silently different key per instance.
func LoadKeys(cfg *config.Config) (*token.Keyring, error) {
	kr, err := token.LoadDir(cfg.JWTKeysDir, cfg.JWTSigningKey, Embedded(cfg))
	if err != nil {
		return nil, fmt.Errorf("signing keys in %s (USERSVC_JWT_KEYS_DIR): %w", cfg.JWTKeysDir, err)
	}
	return kr, nil
}

// NewHasher builds the argon2id hasher from the configured parameters.
// NewHasher returns the argon2id hasher, limited to USERSVC_HASH_CONCURRENCY
// hashes at once (default the CPU count): each holds its whole memory cost
// while it runs, so the limit is what bounds the process's memory under a
// burst of logins. Requests beyond the queue are refused with
// user.ErrOverloaded (503 + Retry-After).
func NewHasher(cfg *config.Config) (*password.Limited, error) {
	p := password.DefaultParams()
	p.Memory, p.Iterations, p.Parallelism = uint32(cfg.Argon2MemoryKiB), uint32(cfg.Argon2Iterations), uint8(cfg.Argon2Threads)
	h, err := password.NewHasher(p)
	if err != nil {
		return nil, fmt.Errorf("argon2 settings (USERSVC_ARGON2_*): %w", err)
	}
	n := cfg.HashConcurrency
	if n == 0 {
		n = runtime.NumCPU()
	}
	// The limit wraps the timer: the histogram measures the computation,
	// not the wait for a slot.
	return password.NewLimited(timedHasher{h}, password.Limit{InFlight: n, Queue: cfg.HashQueue, Wait: cfg.HashQueueWait,
		Busy: user.ErrOverloaded}), nil
}

// NewMailSender returns the SMTP sender when a host is configured, else the
// directory mailer.
func NewMailSender(cfg *config.Config) (mail.Sender, error) {
	if cfg.SMTPHost == "" {
		d, err := mail.NewDir(cfg.MailDir)
		if err != nil {
			return nil, fmt.Errorf("mail dir %s (USERSVC_MAIL_DIR): %w", cfg.MailDir, err)
		}
		return d, nil
	}
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername,
		Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS})
	if err != nil {
		return nil, fmt.Errorf("smtp settings (USERSVC_SMTP_*): %w", err)
	}
	return s, nil
}

// Mode says which process a Core is built for: the single-process dev
// mode may keep state in memory (search index on disk, caches in process);
// a service instance among many must share it or do without.
type Mode int

const (
	ModeDev     Mode = iota // usersvc dev: everything in one process
	ModeService             // usersvc service: one of many instances
	ModeTool                // migrate, admin: no serving
)

// Core is the user service's domain with what it was built from.
type Core struct {
	Store   *sqlstore.Store
	Keys    *token.Keyring
	Service *flows.Service
	// Search is the index List searches and the in-process indexer feeds;
	// nil when none is configured.
	Search search.Index
	// clientLimits are the per-client budgets of the gRPC port (nil for a
	// tool, which serves no port).
	clientLimits map[ratelimit.Action]ratelimit.Limiter
	// checks are the dependencies /readyz reports on.
	checks  []check
	closers []func() error
}

// Close releases the database and the index.
func (c *Core) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	return errors.Join(errs...)
}

// NewCore opens the store, prepares the schema, and builds the domain service.
func NewCore(ctx context.Context, cfg *config.Config, log *slog.Logger, mode Mode) (*Core, error) {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c := &Core{Store: st, closers: []func() error{st.Close}, checks: []check{{name: "database", fn: st.Ping}}}
	if err := c.build(ctx, cfg, log, mode); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// OpenSearch returns the configured search index: Elasticsearch when
// USERSVC_ELASTICSEARCH_URL is set, the embedded index under the data dir in
// dev mode, none otherwise (List then matches prefixes in the database).
func OpenSearch(ctx context.Context, cfg *config.Config, mode Mode) (search.Index, error) {
	if cfg.ElasticsearchURL != "" {
		idx, err := elastic.New(cfg.ElasticsearchURL, cfg.ElasticsearchIdx)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch (USERSVC_ELASTICSEARCH_URL): %w", err)
		}
		if err := idx.EnsureIndex(ctx); err != nil {
			return nil, fmt.Errorf("elasticsearch index %s: %w", cfg.ElasticsearchIdx, err)
		}
		return idx, nil
	}
	if mode != ModeDev {
		return nil, nil
	}
	idx, err := bleveindex.Open(filepath.Join(cfg.DataDir, "search"))
	if err != nil {
		return nil, fmt.Errorf("search index in %s (USERSVC_DATA_DIR): %w", cfg.DataDir, err)
	}
	return idx, nil
}

func (c *Core) build(ctx context.Context, cfg *config.Config, log *slog.Logger, mode Mode) error {
	st := c.Store
	if err := PrepareSchema(ctx, cfg, st, log); err != nil {
		return err
	}
	keys, err := LoadKeys(cfg)
	if err != nil {
		return err
	}
	tokens, err := token.NewManager(keys, token.Config{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		TTL: cfg.AccessTTL, Leeway: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("token settings (USERSVC_JWT_*, USERSVC_ACCESS_TTL): %w", err)
	}
	hasher, err := NewHasher(cfg)
	if err != nil {
		return err
	}
	policy := password.DefaultPolicy()
	policy.MinScore = cfg.PasswordMinScore
	mfaKeys, err := LoadMFAKeys(cfg)
	if err != nil {
		return err
	}
	if mfaKeys == nil && cfg.RequireAdminMFA && mode != ModeTool {
		// Refused at start, not found out at the first admin sign-in: no
		// admin could enrol a factor, so none could administer.
		return errors.New("config: USERSVC_REQUIRE_ADMIN_MFA needs USERSVC_MFA_KEYS (without them no admin can enrol a second factor)")
	}
	// Factors and passkeys straight from the database: the cached store in front of it
	// (sharedState) caches users, not factors.
	deps := flows.Deps{Store: st, Factors: st, Passkeys: st, MFAKeys: mfaKeys, Hasher: hasher, Policy: policy, Tokens: tokens, Logger: log}
	if mode != ModeTool {
		sh, err := sharedState(ctx, cfg, log, mode, st)
		if err != nil {
			return err
		}
		c.closers = append(c.closers, sh.close)
		c.checks = append(c.checks, sh.checks...)
		deps.Store, deps.Denylist, deps.PasswordAttempts, deps.ResetRequests = sh.store, sh.denylist, sh.passwordAttempts, sh.resetRequests
		c.clientLimits = sh.clientLimits
		idx, err := OpenSearch(ctx, cfg, mode)
		if err != nil {
			return err
		}
		if idx != nil {
			c.Search = idx
			c.closers = append(c.closers, idx.Close)
			c.checks = append(c.checks, check{name: "search", fn: idx.Ping})
			deps.Searcher = search.Searcher{Index: idx}
		}
	}
	svc, err := flows.New(deps, user.Config{RefreshTTL: cfg.RefreshTTL, ResetTTL: cfg.ResetTTL, VerifyTTL: cfg.VerifyTTL,
		RefreshReuseGrace:  cfg.RefreshReuseGrace,
		SessionIdleTimeout: cfg.SessionIdleTimeout, SessionMaxLifetime: cfg.SessionMaxLifetime,
		RequireVerifiedEmail: cfg.RequireVerifiedEmail, SignupEnumerationSafe: cfg.SignupEnumerationSafe,
		MFATicketTTL: cfg.MFATicketTTL, ReauthWindow: cfg.ReauthWindow,
		RequireAdminMFA: cfg.RequireAdminMFA, PublicURL: cfg.PublicURL})
	if err != nil {
		return err
	}
	c.Keys, c.Service = keys, svc
	return nil
}

// NewResetMailer builds the mailer the worker hands reset and verification
// tokens (and notices) to.
func NewResetMailer(cfg *config.Config) (mail.ResetMailer, error) {
	sender, err := NewMailSender(cfg)
	if err != nil {
		return mail.ResetMailer{}, err
	}
	return mail.ResetMailer{Sender: sender, From: cfg.MailFrom, PublicURL: cfg.PublicURL, TTL: cfg.ResetTTL,
		VerifyTTL: cfg.VerifyTTL}, nil
}
