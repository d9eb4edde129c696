// Package config loads the settings of every usersvc process from, in
// rising precedence, built-in defaults, a YAML file, USERSVC_* environment
// variables and command-line flags. Each setting is declared once (key, env
// var, flag, default, parser), so the three sources cannot drift apart, and
// every error names the setting and where its bad value came from.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/usersvc/usersvc/internal/seal"
)

// Config is every setting of every role. A role reads the ones it needs.
type Config struct {
	DataDir   string   // embedded SQLite, keys and mail live here
	HTTPAddr  string   // gateway (and dev) listen address
	APIAddr   string   // API listen address in distributed mode
	GRPCAddr  string   // user service listen address
	Etcd      []string // etcd endpoints; empty = in-process registry (dev only)
	MySQLDSN  string   // empty = SQLite in DataDir
	PublicURL string   // base of links in mails

	JWTIssuer     string
	JWTAudience   string
	JWTKeysDir    string // empty = <data dir>/keys
	JWTSigningKey string // kid of the signing key; empty = newest
	AccessTTL     time.Duration
	RefreshTTL    time.Duration
	ResetTTL      time.Duration
	VerifyTTL     time.Duration
	// RefreshReuseGrace: a refresh token presented again this soon after
	// its first use is not taken for a leak; 0 = strict.
	RefreshReuseGrace time.Duration
	// SessionIdleTimeout and SessionMaxLifetime end a session (a refresh
	// family) on the server: not refreshed for the one, or the other after
	// its sign-in.
	SessionIdleTimeout time.Duration
	SessionMaxLifetime time.Duration

	// RequireVerifiedEmail refuses sign-in until the address is verified.
	RequireVerifiedEmail bool
	// SignupEnumerationSafe answers a sign-up the same for new and taken
	// addresses; unset, it follows RequireVerifiedEmail.
	SignupEnumerationSafe bool

	// MFAKeys seal second-factor secrets at rest; MFAKeyID names the one
	// new secrets are sealed with (empty = the first). Empty keys = no
	// TOTP enrolment.
	MFAKeys  []seal.Key
	MFAKeyID string
	// MFATicketTTL is how long the ticket of a password sign-in waits for
	// its second factor.
	MFATicketTTL time.Duration
	// RequireAdminMFA lets an admin without a factor sign in only to enrol one.
	RequireAdminMFA bool
	// ReauthWindow: how recent a sign-in a step-up write needs (one's own
	// email, password, deletion or factor removal; every admin write on
	// another account: user.Actor.NeedsStepUp); 0 = any age.
	ReauthWindow time.Duration

	Argon2MemoryKiB  int
	Argon2Iterations int
	Argon2Threads    int
	HashConcurrency  int           // argon2id hashes at once; 0 = CPU count
	HashQueue        int           // callers waiting for a hash slot
	HashQueueWait    time.Duration // how long one waits before 503
	PasswordMinScore int

	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string
	MailFrom     string
	MailDir      string // empty = <data dir>/mail; used when SMTPHost is empty

	Namespace        string // separates deployments sharing RabbitMQ and Redis; empty = none
	RedisURL         string // empty = in-process cache, limiter and denylist
	RabbitMQURL      string // empty = in-process event bus inside the service
	ElasticsearchURL string // empty = embedded index (dev) or database search
	ElasticsearchIdx string
	OpsAddr          string // health (and metrics) listener of service and worker
	RateLoginIP      Rate
	RateLoginAccount Rate
	RateRegisterIP   Rate
	RateResetIP      Rate
	RateResetAccount Rate

	// TrustedProxies are the peers whose X-Forwarded-For this process
	// believes (gateway: nginx/load balancer; api: the gateways and what
	// is in front of them; service: the API instances, whose calls the
	// gRPC port does not limit per client again). Empty = none.
	TrustedProxies []netip.Prefix
	// GRPCTLS is the mutual TLS of the gRPC hop: the service's own
	// certificate, or the API's client certificate; empty = plaintext.
	GRPCTLSCert, GRPCTLSKey, GRPCTLSCA string

	MaxBodyBytes    int
	RPCTimeout      time.Duration
	RegistryTTL     time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	publicURLDefaulted bool // no public_url given: derived from http_addr
	signupSafeSet      bool // signup_enumeration_safe given explicitly
}

// OpsPorts are the fixed default ops listeners (metrics; health for the
// roles without an HTTP API of their own), so a probe or a scraper knows
// where to look without reading the log; distinct so every role can share
// a host. dev takes any free port (it logs which): a fixed one made a
// second `usersvc dev` on the machine die although its --http-addr was free.
var OpsPorts = map[string]string{"service": "127.0.0.1:9091", "worker": "127.0.0.1:9092",
	"gateway": "127.0.0.1:9093", "api": "127.0.0.1:9094", "dev": "127.0.0.1:0"}

type setting struct {
	key    string // YAML key; the env var is USERSVC_ + upper(key), the flag key with - for _
	usage  string
	def    string
	set    func(c *Config, v string) error
	secret bool
}

func (s setting) env() string  { return "USERSVC_" + strings.ToUpper(s.key) }
func (s setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 15m or 30s, got %q", v)
		}
		*p(c) = d
		return nil
	}
}

// delay is dur that also takes 0 (no delay).
func delay(p func(*Config) *time.Duration) func(*Config, string) error {
	return delayUpTo(0, p)
}

// delayUpTo is delay with an upper bound; max 0 = none.
func delayUpTo(max time.Duration, p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("must be a duration such as 1s, or 0, got %q", v)
		}
		if max > 0 && d > max {
			return fmt.Errorf("must be at most %s, got %q", max, v)
		}
		*p(c) = d
		return nil
	}
}

func integer(min, max int, p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min || n > max {
			return fmt.Errorf("must be an integer from %d to %d, got %q", min, max, v)
		}
		*p(c) = n
		return nil
	}
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", v)
		}
		*p(c) = b
		return nil
	}
}

func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		*p(c) = out
		return nil
	}
}

func namespace(c *Config, v string) error {
	ok := len(v) <= 32
	for _, r := range v {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}
	if !ok {
		return fmt.Errorf("must be up to 32 of a-z, 0-9 and -, got %q", v)
	}
	c.Namespace = v
	return nil
}

// Rate is a limit of N requests per Window.
type Rate struct {
	N      int
	Window time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Window) }

func rate(p func(*Config) *Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, w, ok := strings.Cut(v, "/")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		d, derr := time.ParseDuration(strings.TrimSpace(w))
		if !ok || err != nil || derr != nil || count < 1 || d <= 0 {
			return fmt.Errorf("must be N/duration such as 5/1m, got %q", v)
		}
		*p(c) = Rate{N: count, Window: d}
		return nil
	}
}

func mfaKeys(c *Config, v string) error {
	keys, err := seal.ParseKeys(v)
	if err != nil {
		return fmt.Errorf("%w (the values are not shown)", err)
	}
	c.MFAKeys = keys
	return nil
}

func prefixes(p func(*Config) *[]netip.Prefix) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []netip.Prefix
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return fmt.Errorf("must be comma-separated CIDRs or addresses such as 10.0.0.0/8, got %q", part)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, pfx.Masked())
		}
		*p(c) = out
		return nil
	}
}

func addr(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, got %q", v)
		}
		*p(c) = v
		return nil
	}
}

func oneOf(choices []string, p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if !slices.Contains(choices, v) {
			return fmt.Errorf("must be one of %s, got %q", strings.Join(choices, ", "), v)
		}
		*p(c) = v
		return nil
	}
}

var settings = []setting{
	{key: "data_dir", def: "./data", usage: "directory for the embedded SQLite database, signing keys, `mfa.keys` and mail", set: str(func(c *Config) *string { return &c.DataDir })},
	{key: "http_addr", def: "127.0.0.1:8080", usage: "address the gateway (and dev mode) listens on", set: addr(func(c *Config) *string { return &c.HTTPAddr })},
	{key: "api_addr", def: "127.0.0.1:8081", usage: "address the API listens on (api role)", set: addr(func(c *Config) *string { return &c.APIAddr })},
	{key: "grpc_addr", def: "127.0.0.1:9090", usage: "address the user service's gRPC server listens on (service role)", set: addr(func(c *Config) *string { return &c.GRPCAddr })},
	{key: "etcd_endpoints", usage: "comma-separated etcd endpoints (host:port); required by gateway, api and service", set: list(func(c *Config) *[]string { return &c.Etcd })},
	{key: "mysql_dsn", secret: true, usage: "MySQL DSN, e.g. user:pass@tcp(127.0.0.1:3306)/usersvc; empty = SQLite in the data dir", set: str(func(c *Config) *string { return &c.MySQLDSN })},
	{key: "public_url", usage: "public base URL of the gateway (or the proxy in front of it) used in mailed links; required by the roles that mail (worker; service without RabbitMQ); default in dev http://<http_addr>", set: str(func(c *Config) *string { return &c.PublicURL })},
	{key: "jwt_issuer", def: "usersvc", usage: "iss claim of access tokens", set: str(func(c *Config) *string { return &c.JWTIssuer })},
	{key: "jwt_audience", def: "usersvc", usage: "aud claim of access tokens", set: str(func(c *Config) *string { return &c.JWTAudience })},
	{key: "jwt_keys_dir", usage: "directory of Ed25519 PEM keys (<kid>.pem); default <data dir>/keys", set: str(func(c *Config) *string { return &c.JWTKeysDir })},
	{key: "jwt_signing_key", usage: "kid of the signing key; default the newest private key", set: str(func(c *Config) *string { return &c.JWTSigningKey })},
	{key: "access_ttl", def: "15m", usage: "access token lifetime", set: dur(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{key: "refresh_ttl", def: "720h", usage: "refresh token lifetime", set: dur(func(c *Config) *time.Duration { return &c.RefreshTTL })},
	{key: "session_idle_timeout", def: "360h", usage: "a session (sign-in) not refreshed for this long ends on the server, for pages and API alike", set: dur(func(c *Config) *time.Duration { return &c.SessionIdleTimeout })},
	{key: "session_max_lifetime", def: "720h", usage: "a session ends this long after its sign-in however active, for pages and API alike", set: dur(func(c *Config) *time.Duration { return &c.SessionMaxLifetime })},
	{key: "refresh_reuse_grace", def: "10s", usage: "how long after its first use a refresh token may be presented again and yield another session of the same family instead of revoking it as leaked, so concurrent requests crossing a rotation (two browser tabs) do not sign the person out; the cost is that a stolen token replayed within this window of the owner's use goes undetected, hence at most 1m; 0 = strict, any reuse revokes the family", set: delayUpTo(time.Minute, func(c *Config) *time.Duration { return &c.RefreshReuseGrace })},
	{key: "reset_ttl", def: "30m", usage: "password reset token lifetime", set: dur(func(c *Config) *time.Duration { return &c.ResetTTL })},
	{key: "verify_ttl", def: "24h", usage: "email verification token lifetime", set: dur(func(c *Config) *time.Duration { return &c.VerifyTTL })},
	{key: "require_verified_email", def: "false", usage: "refuse sign-in (403 email_not_verified) until the account's address is verified through the mailed link; off by default so existing flows keep working, recommended in production", set: boolean(func(c *Config) *bool { return &c.RequireVerifiedEmail })},
	{key: "signup_enumeration_safe", usage: "POST /user answers 202 alike for a new and a registered address and mails the owner of a registered one, so sign-up does not reveal who is registered; default: the value of require_verified_email", set: func(c *Config, v string) error {
		c.signupSafeSet = true
		return boolean(func(c *Config) *bool { return &c.SignupEnumerationSafe })(c, v)
	}},
	{key: "mfa_keys", secret: true, usage: "keys that encrypt second-factor secrets (TOTP seeds) at rest with AES-256-GCM: comma-separated <id>:<base64 of 32 random bytes> (openssl rand -base64 32); after a rotation keep the old ones listed until usersvc mfa reseal has run; empty = the embedded default (SQLite) makes one in <data dir>/mfa.keys, a MySQL deployment has none and TOTP cannot be enrolled or checked", set: mfaKeys},
	{key: "mfa_key_id", usage: "id of the mfa_keys entry new secrets are sealed with; default the first", set: func(c *Config, v string) error {
		if err := seal.ValidKeyID(v); err != nil {
			return errors.New("must be a key id of mfa_keys (A-Z, a-z, 0-9, - and _)")
		}
		c.MFAKeyID = v
		return nil
	}},
	{key: "mfa_ticket_ttl", def: "5m", usage: "how long a sign-in with the right password waits for its second factor (the MFA ticket's lifetime; single use)", set: dur(func(c *Config) *time.Duration { return &c.MFATicketTTL })},
	{key: "reauth_window", def: "10m", usage: "step-up: changing one's email or password, deleting one's account or removing one's factors, and every admin write on another account, with a user's token, need a sign-in this recent, made with the caller's second factor if they have one; otherwise 401 reauthentication_required; 0 = any age (the factor is still required)", set: delay(func(c *Config) *time.Duration { return &c.ReauthWindow })},
	{key: "require_admin_mfa", def: "false", usage: "an admin's token from a sign-in without a second factor has no admin powers: on their own account the admin is a plain user, and can enrol one; recommended in production", set: boolean(func(c *Config) *bool { return &c.RequireAdminMFA })},
	{key: "argon2_memory_kib", def: "19456", usage: "argon2id memory in KiB (OWASP: 19456)", set: integer(8, 4<<20, func(c *Config) *int { return &c.Argon2MemoryKiB })},
	{key: "argon2_iterations", def: "2", usage: "argon2id iterations", set: integer(1, 100, func(c *Config) *int { return &c.Argon2Iterations })},
	{key: "argon2_threads", def: "1", usage: "argon2id parallelism", set: integer(1, 255, func(c *Config) *int { return &c.Argon2Threads })},
	{key: "hash_concurrency", def: "0", usage: "password hashes computed at once (each holds argon2_memory_kib while it runs, so this bounds their memory); 0 = the CPU count", set: integer(0, 4096, func(c *Config) *int { return &c.HashConcurrency })},
	{key: "hash_queue", def: "64", usage: "logins and password changes that may wait for a hash slot; beyond them requests are refused at once with 503 and Retry-After", set: integer(0, 1<<20, func(c *Config) *int { return &c.HashQueue })},
	{key: "hash_queue_wait", def: "2s", usage: "how long a request waits for a hash slot before it is refused with 503 and Retry-After", set: dur(func(c *Config) *time.Duration { return &c.HashQueueWait })},
	{key: "password_min_score", def: "2", usage: "minimum zxcvbn score (0-4) of a new password", set: integer(0, 4, func(c *Config) *int { return &c.PasswordMinScore })},
	{key: "smtp_host", usage: "SMTP server; empty = write mail as .eml files to mail_dir", set: str(func(c *Config) *string { return &c.SMTPHost })},
	{key: "smtp_port", def: "587", usage: "SMTP port", set: integer(1, 65535, func(c *Config) *int { return &c.SMTPPort })},
	{key: "smtp_username", usage: "SMTP AUTH user; empty = no AUTH", set: str(func(c *Config) *string { return &c.SMTPUsername })},
	{key: "smtp_password", secret: true, usage: "SMTP AUTH password", set: str(func(c *Config) *string { return &c.SMTPPassword })},
	{key: "smtp_tls", def: "starttls", usage: "starttls, tls (implicit) or none (loopback only)", set: oneOf([]string{"starttls", "tls", "none"}, func(c *Config) *string { return &c.SMTPTLS })},
	{key: "mail_from", def: "usersvc <no-reply@localhost>", usage: "From of mails", set: str(func(c *Config) *string { return &c.MailFrom })},
	{key: "mail_dir", usage: "directory mailer target; default <data dir>/mail", set: str(func(c *Config) *string { return &c.MailDir })},
	{key: "namespace", usage: "name of this deployment (a-z, 0-9, -; up to 32): prefixes the RabbitMQ exchange and queues and the Redis keys, so deployments sharing a broker and a Redis stay apart; empty = none", set: namespace},
	{key: "redis_url", secret: true, usage: "Redis URL (redis://host:6379/0) for the user cache, rate limits and logout denylist; empty = in-process", set: str(func(c *Config) *string { return &c.RedisURL })},
	{key: "rabbitmq_url", secret: true, usage: "RabbitMQ URL (amqp://user:pass@host:5672/) for user events; empty = in-process bus and mailer inside the service", set: str(func(c *Config) *string { return &c.RabbitMQURL })},
	{key: "elasticsearch_url", usage: "Elasticsearch URL for user search; empty = embedded index in dev mode, database prefix search otherwise", set: str(func(c *Config) *string { return &c.ElasticsearchURL })},
	{key: "elasticsearch_index", def: "users", usage: "Elasticsearch index name", set: str(func(c *Config) *string { return &c.ElasticsearchIdx })},
	{key: "ops_addr", usage: "ops listener of every role: /metrics (Prometheus), and /healthz, /readyz for the service and worker; default 127.0.0.1:9091 (service), :9092 (worker), :9093 (gateway), :9094 (api), a free port (dev); port 0 = any free port (logged)", set: addr(func(c *Config) *string { return &c.OpsAddr })},
	{key: "rate_login_ip", def: "20/1m", usage: "POST /user/token attempts per client IP", set: rate(func(c *Config) *Rate { return &c.RateLoginIP })},
	{key: "rate_login_account", def: "5/1m", usage: "password attempts per account, sign-ins and current_password checks together: slows guessing without locking the owner out for longer than the window", set: rate(func(c *Config) *Rate { return &c.RateLoginAccount })},
	{key: "rate_register_ip", def: "10/1m", usage: "POST /user per client IP", set: rate(func(c *Config) *Rate { return &c.RateRegisterIP })},
	{key: "rate_reset_ip", def: "5/1m", usage: "POST /user/password per client IP, and POST /user/verification (a budget of its own)", set: rate(func(c *Config) *Rate { return &c.RateResetIP })},
	{key: "rate_reset_account", def: "3/15m", usage: "POST /user/password per email; POST /user/verification and the mails to the owner of an address someone tried to sign up with have budgets of their own under the same rule", set: rate(func(c *Config) *Rate { return &c.RateResetAccount })},
	{key: "trusted_proxies", usage: "comma-separated CIDRs of the proxies whose X-Forwarded-For is believed (gateway: nginx; api: the gateways and nginx); on the service, the API instances, whose calls are not limited per client again; empty = none, the peer is the client", set: prefixes(func(c *Config) *[]netip.Prefix { return &c.TrustedProxies })},
	{key: "grpc_tls_cert", usage: "PEM certificate of this side of the gRPC hop (service: its server certificate; api: its client certificate); with key and CA, mutual TLS 1.3 and no plaintext", set: str(func(c *Config) *string { return &c.GRPCTLSCert })},
	{key: "grpc_tls_key", usage: "PEM private key of grpc_tls_cert", set: str(func(c *Config) *string { return &c.GRPCTLSKey })},
	{key: "grpc_tls_ca", usage: "PEM CA that signed the other side's gRPC certificate", set: str(func(c *Config) *string { return &c.GRPCTLSCA })},
	{key: "max_body_bytes", def: "65536", usage: "largest accepted request body", set: integer(1024, 16<<20, func(c *Config) *int { return &c.MaxBodyBytes })},
	{key: "rpc_timeout", def: "5s", usage: "timeout of one RPC from the API to the service", set: dur(func(c *Config) *time.Duration { return &c.RPCTimeout })},
	{key: "registry_ttl", def: "15s", usage: "registry lease; a crashed instance disappears after it", set: dur(func(c *Config) *time.Duration { return &c.RegistryTTL })},
	{key: "drain_delay", def: "1s", usage: "api and gateway: how long SIGTERM keeps serving, answering with Connection: close, before it closes connections: gateways see an API leave the registry, and a proxy's kept-alive connections to a gateway end cleanly; 0 = none", set: delay(func(c *Config) *time.Duration { return &c.DrainDelay })},
	{key: "shutdown_timeout", def: "15s", usage: "how long SIGTERM waits for in-flight requests", set: dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{key: "log_level", def: "info", usage: "debug, info, warn or error", set: oneOf([]string{"debug", "info", "warn", "error"}, func(c *Config) *string { return &c.LogLevel })},
	{key: "log_format", def: "json", usage: "json or text", set: oneOf([]string{"json", "text"}, func(c *Config) *string { return &c.LogFormat })},
}

// UsageError is a command line that does not parse (unknown flag, missing
// value): the caller's mistake, reported with the usage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Load builds the configuration for one subcommand: defaults, then the file
// named by --config or USERSVC_CONFIG, then the environment, then args.
// It returns the arguments left after the flags. Help and flag errors are
// written to out.
func Load(cmd string, args []string, getenv func(string) string, out io.Writer) (*Config, []string, error) {
	return LoadWith(cmd, args, getenv, out, nil)
}

// LoadWith is Load with extra command-specific flags, defined by extra on
// the same flag set, so they parse (and show in -help) with the settings.
func LoadWith(cmd string, args []string, getenv func(string) string, out io.Writer, extra func(*flag.FlagSet)) (*Config, []string, error) {
	return LoadCommand(Command{Name: cmd, Extra: extra}, args, getenv, out)
}

// Command describes a subcommand to LoadCommand: its help text, its own
// flags, and which settings it offers as flags.
type Command struct {
	Name    string // as typed: "api", "admin create"
	Summary string // one line: what the command does
	Extra   func(*flag.FlagSet)
	// Flags reports whether the command takes the setting with this key as
	// a flag; nil = every setting. The environment and the config file may
	// still set any setting (one file serves every role).
	Flags func(key string) bool
}

// LoadCommand builds the configuration for cmd: defaults, then the file
// named by --config or USERSVC_CONFIG, then the environment, then args.
// --help writes the command's help to out and returns flag.ErrHelp; a
// command line that does not parse returns a short UsageError.
func LoadCommand(cmd Command, args []string, getenv func(string) string, out io.Writer) (*Config, []string, error) {
	c := &Config{}
	for _, s := range settings {
		if s.def != "" {
			if err := s.set(c, s.def); err != nil {
				panic(fmt.Sprintf("config: default of %s: %v", s.key, err))
			}
		}
	}
	fs := flag.NewFlagSet("usersvc "+cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported short, help by commandHelp
	fs.Usage = func() {}
	if cmd.Extra != nil {
		cmd.Extra(fs)
	}
	configFile := fs.String("config", getenv("USERSVC_CONFIG"), "YAML config file (env USERSVC_CONFIG)")
	flagVals := map[string]*string{}
	for _, s := range settings {
		if cmd.Flags == nil || cmd.Flags(s.key) {
			flagVals[s.key] = fs.String(s.flag(), "", fmt.Sprintf("%s (env %s)", s.usage, s.env()))
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(out, cmd, fs)
			return nil, nil, err
		}
		return nil, nil, &UsageError{Err: fmt.Errorf("%w (usersvc %s --help lists its flags)", err, cmd.Name)}
	}
	if *configFile != "" {
		if err := c.applyFile(*configFile); err != nil {
			return nil, nil, err
		}
	}
	for _, s := range settings {
		if v := getenv(s.env()); v != "" {
			if err := s.set(c, v); err != nil {
				return nil, nil, fmt.Errorf("config: %s: %w", s.env(), err)
			}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range settings {
		if set[s.flag()] && flagVals[s.key] != nil {
			if err := s.set(c, *flagVals[s.key]); err != nil {
				return nil, nil, fmt.Errorf("config: --%s: %w", s.flag(), err)
			}
		}
	}
	c.derive()
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	if c.OpsAddr == "" {
		c.OpsAddr = OpsPorts[cmd.Name]
		if c.OpsAddr == "" {
			c.OpsAddr = "127.0.0.1:0"
		}
	}
	return c, fs.Args(), nil
}

func (c *Config) applyFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	known := map[string]setting{}
	for _, s := range settings {
		known[s.key] = s
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		s, ok := known[k]
		if !ok {
			return fmt.Errorf("config: %s: unknown setting %q", path, k)
		}
		v := m[k]
		var sv string
		switch x := v.(type) {
		case string:
			sv = x
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			sv = strings.Join(parts, ",")
		case float64:
			sv = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			sv = fmt.Sprint(x)
		}
		if err := s.set(c, sv); err != nil {
			return fmt.Errorf("config: %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// derive fills settings whose defaults depend on others.
func (c *Config) derive() {
	if c.JWTKeysDir == "" {
		c.JWTKeysDir = filepath.Join(c.DataDir, "keys")
	}
	if c.MailDir == "" {
		c.MailDir = filepath.Join(c.DataDir, "mail")
	}
	if !c.signupSafeSet {
		c.SignupEnumerationSafe = c.RequireVerifiedEmail
	}
	if c.PublicURL == "" {
		c.publicURLDefaulted = true
		c.PublicURL = "http://" + c.HTTPAddr
	}
}

// check refuses combinations of settings that each parse alone.
func (c *Config) check() error {
	if c.MFAKeyID != "" && !slices.ContainsFunc(c.MFAKeys, func(k seal.Key) bool { return k.ID == c.MFAKeyID }) {
		return fmt.Errorf("config: USERSVC_MFA_KEY_ID %q is not among the ids of USERSVC_MFA_KEYS", c.MFAKeyID)
	}
	return nil
}

// MFAKeyring is the keyring of MFAKeys with MFAKeyID current, or nil
// when no key is configured.
func (c *Config) MFAKeyring() (*seal.Keyring, error) {
	if len(c.MFAKeys) == 0 {
		return nil, nil
	}
	k, err := seal.NewKeyring(c.MFAKeys, c.MFAKeyID)
	if err != nil {
		return nil, fmt.Errorf("config: USERSVC_MFA_KEYS: %w", err)
	}
	return k, nil
}

// Require checks the settings a role cannot run without, naming each.
func (c *Config) Require(keys ...string) error {
	var errs []error
	for _, k := range keys {
		switch k {
		case "etcd_endpoints":
			if len(c.Etcd) == 0 {
				errs = append(errs, errors.New("config: USERSVC_ETCD_ENDPOINTS (--etcd-endpoints) is required by this command"))
			}
		case "mysql_dsn":
			if c.MySQLDSN == "" {
				errs = append(errs, errors.New("config: USERSVC_MYSQL_DSN (--mysql-dsn) is required by this command"))
			}
		case "mfa_keys":
			if len(c.MFAKeys) == 0 {
				errs = append(errs, errors.New("config: USERSVC_MFA_KEYS (--mfa-keys) is required by this command"))
			}
		case "public_url":
			if c.publicURLDefaulted {
				errs = append(errs, errors.New("config: USERSVC_PUBLIC_URL (--public-url) is required by this command: "+
					"the base URL of the links it mails, i.e. where users reach the gateway (e.g. https://accounts.example.com)"))
			}
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("config: USERSVC_PUBLIC_URL must be an http(s) URL, got %q", c.PublicURL))
	}
	return errors.Join(errs...)
}

// Usage lists every setting with its env var, flag and default, for --help
// and the README's configuration reference.
func Usage() string {
	var b strings.Builder
	b.WriteString("| env | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "—"
		}
		usage := s.usage
		if s.secret {
			usage += " (secret: prefer the environment or a file readable only by the service to a flag)"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | %s |\n", s.env(), s.flag(), def, usage)
	}
	return b.String()
}

// commandHelp prints a command's help: what it does, how to call it, and
// each of its flags with its environment variable and default.
func commandHelp(out io.Writer, cmd Command, fs *flag.FlagSet) {
	fmt.Fprintf(out, "usersvc %s", cmd.Name)
	if cmd.Summary != "" {
		fmt.Fprintf(out, ": %s", cmd.Summary)
	}
	fmt.Fprintf(out, "\n\nUsage: usersvc %s [flags]\n\nFlags (each also an environment variable or a key of the --config file;\na flag wins over the environment, the environment over the file):\n", cmd.Name)
	defaults := map[string]string{}
	for _, s := range settings {
		defaults[s.flag()] = s.def
	}
	fs.VisitAll(func(f *flag.Flag) {
		def, ok := defaults[f.Name]
		if !ok {
			def = f.DefValue
		}
		line := "  --" + f.Name
		if def != "" {
			line += " (default " + def + ")"
		}
		fmt.Fprintf(out, "%s\n      %s\n", line, f.Usage)
	})
}

// Text lists every setting as plain text, for `usersvc help settings`.
func Text() string {
	var b strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&b, "  %s, --%s", s.env(), s.flag())
		if s.def != "" {
			fmt.Fprintf(&b, " (default %s)", s.def)
		}
		fmt.Fprintf(&b, "\n      %s\n", s.usage)
	}
	return b.String()
}
