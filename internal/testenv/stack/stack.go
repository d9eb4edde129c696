// Package stack builds the real user service in a test process: the SQL
// store (SQLite in a temp dir, or a fresh MariaDB database), Ed25519 keys,
// an argon2id hasher with cheap parameters, the directory mailer and the
// domain service. Tests of the transports start their servers on top of it,
// so nothing between the request and the database is faked.
package stack

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
	"github.com/usersvc/usersvc/internal/worker"
)

// CheapParams keep argon2id fast in tests; production uses DefaultParams.
var CheapParams = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Issuer and Audience of the test tokens.
const Issuer, Audience = "usersvc-test", "usersvc"

// Options change the defaults.
type Options struct {
	MySQLDSN string          // empty = SQLite in a temp dir
	Params   password.Params // zero = CheapParams
	Logger   *slog.Logger    // nil = discard
	// NoEvents leaves the outbox alone, for tests that run their own relay.
	NoEvents bool
	// PasswordAttempts is the per-account password budget; nil = none.
	PasswordAttempts user.Limiter
	// ResetRequests is the per-address budget of reset mails; nil = none.
	ResetRequests user.Limiter
	// Config is the service's rules (verification switches, TTLs).
	Config user.Config
}

// PublicURL is the stack's public URL unless Options.Config has one: the
// WebAuthn relying party (id "localhost") a test's software authenticator
// answers as.
const PublicURL = "http://localhost:8080"

// Stack is a built user service and what it was built from.
type Stack struct {
	Service *flows.Service
	Store   *sqlstore.Store
	Keys    *token.Keyring
	Tokens  *token.Manager
	MailDir string
}

// mfaKeys is a keyring of one random key, as USERSVC_MFA_KEYS would give.
func mfaKeys(t testing.TB) *seal.Keyring {
	t.Helper()
	ring, err := seal.NewRandomKeyring("test")
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// startEvents runs the embedded event pipeline (outbox relay, in-process
// bus, mailer) until the test ends, so reset mails land in MailDir as in
// the dev mode.
func startEvents(t testing.TB, st *sqlstore.Store, m mail.ResetMailer, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	bus := events.NewBus(log)
	bus.Declare(worker.MailerSubscription)
	var wg sync.WaitGroup
	wg.Go(func() {
		r := &events.Relay{Outbox: st, Publisher: bus, Log: log, Interval: 10 * time.Millisecond}
		_ = r.Run(ctx)
	})
	wg.Go(func() { _ = bus.Consume(ctx, worker.MailerSubscription, worker.Mailer(st, m, time.Now, log)) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// New builds the stack; everything is closed when the test ends.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	driver, dsn := "sqlite", filepath.Join(t.TempDir(), "db.sqlite")
	if o.MySQLDSN != "" {
		driver, dsn = "mysql", o.MySQLDSN
	}
	st, err := sqlstore.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	keys, err := token.LoadDir(t.TempDir(), "", true)
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	tokens, err := token.NewManager(keys, token.Config{Issuer: Issuer, Audience: Audience, TTL: 15 * time.Minute})
	if err != nil {
		t.Fatalf("token manager: %v", err)
	}
	params := o.Params
	if params == (password.Params{}) {
		params = CheapParams
	}
	hasher, err := password.NewHasher(params)
	if err != nil {
		t.Fatalf("hasher: %v", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The denylist as a service instance without Redis has it: in the
	// database, checked there.
	deny, err := revocation.New(ctx, st, revocation.Options{Logger: log})
	if err != nil {
		t.Fatalf("denylist: %v", err)
	}
	if o.Config.PublicURL == "" {
		o.Config.PublicURL = PublicURL
	}
	svc, err := flows.New(flows.Deps{Store: st, Hasher: hasher, Policy: password.DefaultPolicy(), Tokens: tokens,
		MFAKeys: mfaKeys(t), Denylist: deny, PasswordAttempts: o.PasswordAttempts,
		ResetRequests: o.ResetRequests, Logger: log}, o.Config)
	if err != nil {
		t.Fatalf("user service: %v", err)
	}
	mailDir := filepath.Join(t.TempDir(), "mail")
	sender, err := mail.NewDir(mailDir)
	if err != nil {
		t.Fatalf("mail dir: %v", err)
	}
	if !o.NoEvents {
		startEvents(t, st, mail.ResetMailer{Sender: sender, From: "usersvc <no-reply@example.com>",
			PublicURL: "http://127.0.0.1:8080", TTL: 30 * time.Minute, VerifyTTL: 24 * time.Hour}, log)
	}
	return &Stack{Service: svc, Store: st, Keys: keys, Tokens: tokens, MailDir: mailDir}
}
