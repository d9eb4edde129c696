package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"
)

// TLS modes for SMTPConfig.TLS.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS before
	// anything else is sent. The upgrade is mandatory: a server (or an
	// attacker in the path) that does not offer STARTTLS makes Send fail
	// instead of silently falling back to plain text, because a reset mail
	// carries a credential.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts. Only allowed for loopback hosts (a local relay
	// or a development mail catcher) unless SMTPConfig.Insecure is set.
	TLSNone = "none"
)

// Defaults applied by NewSMTP to zero-valued SMTPConfig fields.
const (
	DefaultSMTPPort      = 587 // submission with STARTTLS
	DefaultSMTPSPort     = 465 // implicit TLS, used when TLS is "tls"
	DefaultSMTPTimeout   = 10 * time.Second
	DefaultSMTPHelloName = "localhost"
)

// SMTPConfig configures the SMTP sender. The zero value of every optional
// field selects a safe default.
type SMTPConfig struct {
	Host string
	// Port defaults to 587, or 465 when TLS is "tls".
	Port int
	// Username enables AUTH PLAIN; empty means no authentication.
	Username string
	Password string
	// TLS is "starttls" (the default), "tls" (implicit TLS, port 465) or
	// "none" (only for loopback hosts unless Insecure is set). See the
	// TLSStartTLS, TLSImplicit and TLSNone constants.
	TLS string
	// Insecure allows TLS "none" (and thus AUTH and the message, including
	// reset tokens, in plain text) to a non-loopback host. Discouraged.
	// It never disables certificate verification: a relay with a private
	// CA is trusted through RootCAs instead.
	Insecure bool
	// RootCAs verifies the server certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the dial and the whole conversation; default 10s.
	// A context deadline, if earlier, wins.
	Timeout time.Duration
	// HelloName is the EHLO name; default "localhost".
	HelloName string
}

// Validate reports the first invalid field, naming it, so a bad
// configuration fails at startup instead of at the first password reset.
func (c SMTPConfig) Validate() error {
	switch {
	case c.Host == "":
		return configError("Host", "must not be empty")
	case strings.ContainsAny(c.Host, " \t\r\n/@[]") || hasControl(c.Host):
		return configError("Host", "must be a bare host name or IP address (IPv6 without brackets)")
	case strings.Contains(c.Host, ":") && net.ParseIP(c.Host) == nil:
		return configError("Host", "must not include a port; use Port")
	}
	if c.Port < 0 || c.Port > 65535 {
		return configError("Port", "%d is out of range 1-65535 (0 selects the default)", c.Port)
	}
	mode, ok := tlsMode(c.TLS)
	if !ok {
		return configError("TLS", "unknown mode %q; want %q, %q or %q", c.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if mode == TLSNone && !c.Insecure && !isLoopback(c.Host) {
		return configError("TLS", "%q to non-loopback host %q would send mail and credentials in plain text; use %q or %q, or set Insecure", TLSNone, c.Host, TLSStartTLS, TLSImplicit)
	}
	if c.Username == "" && c.Password != "" {
		return configError("Password", "is set but Username is empty (AUTH is only used with a Username)")
	}
	// AUTH PLAIN separates its fields with NUL.
	if strings.ContainsRune(c.Username, 0) || strings.ContainsAny(c.Username, "\r\n") {
		return configError("Username", "must not contain NUL, CR or LF")
	}
	if strings.ContainsRune(c.Password, 0) {
		return configError("Password", "must not contain NUL")
	}
	if c.Timeout < 0 {
		return configError("Timeout", "must not be negative (0 selects %s)", DefaultSMTPTimeout)
	}
	if strings.ContainsAny(c.HelloName, " \t\r\n") || hasControl(c.HelloName) {
		return configError("HelloName", "must be a single domain or address literal without spaces")
	}
	return nil
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("mail: SMTPConfig.%s: %s", field, fmt.Sprintf(format, args...))
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// tlsMode normalises the TLS setting; it is case-insensitive because it
// usually comes from an environment variable.
func tlsMode(s string) (string, bool) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case "":
		return TLSStartTLS, true
	case TLSStartTLS, TLSImplicit, TLSNone:
		return m, true
	default:
		return "", false
	}
}

// isLoopback reports whether host certainly stays on this machine. Only
// "localhost" and loopback IP literals count: resolving other names here
// would let DNS decide whether plain text is acceptable.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SMTP sends each message over its own SMTP connection. It is safe for
// concurrent use. A connection per message is slower than a pool but the
// service sends few mails, and it means no idle connection can go stale
// between two password resets.
type SMTP struct {
	cfg  SMTPConfig // validated, defaults applied
	addr string     // host:port
	tls  *tls.Config
}

// NewSMTP validates cfg and applies its defaults.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.TLS, _ = tlsMode(cfg.TLS)
	if cfg.Port == 0 {
		cfg.Port = DefaultSMTPPort
		if cfg.TLS == TLSImplicit {
			cfg.Port = DefaultSMTPSPort
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = DefaultSMTPHelloName
	}
	return &SMTP{
		cfg:  cfg,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		tls: &tls.Config{
			ServerName: cfg.Host,
			RootCAs:    cfg.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
	}, nil
}

// Send delivers m: connect (implicit TLS if configured), EHLO, STARTTLS
// (mandatory in "starttls" mode), AUTH PLAIN (if a Username is set), MAIL,
// RCPT, DATA, QUIT.
//
// The whole exchange, dial included, is bounded by cfg.Timeout and by ctx:
// cancelling ctx aborts blocked network I/O at once, and the returned error
// then wraps ctx.Err(). As with any SMTP client, a cancel that arrives after
// the final "." of DATA was sent can leave the message delivered anyway.
//
// Once the server has accepted the data, errors from QUIT are ignored: the
// message is queued, and reporting a failure would only make callers send
// it twice.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	start := time.Now()
	from, err := parseAddress("From", m.From)
	if err != nil {
		return err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return err
	}
	data, err := m.render(start, from, to)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.fail(ctx, "connect", err)
	}

	deadline := start.Add(s.cfg.Timeout)
	conn, err := s.dial(ctx, deadline)
	if err != nil {
		return s.fail(ctx, "connect", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return s.fail(ctx, "connect", err)
	}
	// net/smtp has no context support. A deadline in the past unblocks any
	// pending read or write (also through the TLS layer added by
	// STARTTLS); AfterFunc runs only after ctx.Err() is set, so fail()
	// reliably reports the context error rather than an I/O timeout.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	return s.converse(ctx, conn, from, to, data)
}

func (s *SMTP) dial(ctx context.Context, deadline time.Time) (net.Conn, error) {
	d := &net.Dialer{Deadline: deadline}
	if s.cfg.TLS == TLSImplicit {
		// tls.Dialer also bounds the handshake by ctx and the deadline.
		return (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	}
	return d.DialContext(ctx, "tcp", s.addr)
}

func (s *SMTP) converse(ctx context.Context, conn net.Conn, from, to *netmail.Address, data []byte) error {
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return s.fail(ctx, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return s.fail(ctx, "hello", err)
	}

	if s.cfg.TLS == TLSStartTLS {
		ok, _, err := extension(c, "STARTTLS")
		if err != nil {
			return s.fail(ctx, "ehlo", err)
		}
		if !ok {
			return s.fail(ctx, "starttls", errors.New("server does not offer STARTTLS, which TLS mode \"starttls\" requires (refusing to send in plain text)"))
		}
		if err := c.StartTLS(s.tls); err != nil {
			return s.fail(ctx, "starttls", err)
		}
	}

	if s.cfg.Username != "" {
		ok, mechs, err := extension(c, "AUTH")
		if err != nil {
			return s.fail(ctx, "ehlo", err)
		}
		if !ok {
			return s.fail(ctx, "auth", errors.New("server does not offer AUTH but a Username is configured"))
		}
		if !hasWord(mechs, "PLAIN") {
			return s.fail(ctx, "auth", fmt.Errorf("server does not offer AUTH PLAIN (offers %q)", mechs))
		}
		auth := &plainAuth{
			username:       s.cfg.Username,
			password:       s.cfg.Password,
			allowPlaintext: s.cfg.TLS == TLSNone, // Validate limited "none" to loopback or Insecure
		}
		if err := c.Auth(auth); err != nil {
			return s.fail(ctx, "auth", err)
		}
	}

	if err := c.Mail(from.Address); err != nil {
		return s.fail(ctx, "mail from", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return s.fail(ctx, "rcpt to", err)
	}
	w, err := c.Data()
	if err != nil {
		return s.fail(ctx, "data", err)
	}
	if _, err := w.Write(data); err != nil {
		return s.fail(ctx, "data", err)
	}
	// Close sends the terminating "." and reads the server's verdict.
	if err := w.Close(); err != nil {
		return s.fail(ctx, "data", err)
	}
	_ = c.Quit()
	return nil
}

// extension reports whether the server advertised ext in its EHLO reply.
// net/smtp's Extension answers a plain false when EHLO and HELO failed
// altogether; NOOP (mandatory per RFC 5321 4.5.1) then returns that cached
// hello error without talking to the server, so the caller can report the
// real cause instead of "extension not offered".
func extension(c *smtp.Client, ext string) (ok bool, params string, err error) {
	if ok, params := c.Extension(ext); ok {
		return true, params, nil
	}
	if err := c.Noop(); err != nil {
		return false, "", err
	}
	return false, "", nil
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// fail wraps err with the server address and the protocol stage. If ctx is
// done, the context error is what the caller needs to see (the I/O error is
// only the consequence of our own abort).
func (s *SMTP) fail(ctx context.Context, stage string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("mail: smtp %s: %s: %w", s.addr, stage, ctxErr)
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("mail: smtp %s: %s: exceeded timeout of %s: %w", s.addr, stage, s.cfg.Timeout, err)
	}
	return fmt.Errorf("mail: smtp %s: %s: %w", s.addr, stage, err)
}

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's PlainAuth is not used
// because it decides on its own which hosts may receive credentials in plain
// text (a fixed list of loopback names); here that policy belongs to
// SMTPConfig.Validate, which also honours Insecure.
type plainAuth struct {
	username, password string
	allowPlaintext     bool
}

func (a *plainAuth) Start(info *smtp.ServerInfo) (string, []byte, error) {
	if !info.TLS && !a.allowPlaintext {
		return "", nil, errors.New("refusing to send credentials over an unencrypted connection")
	}
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge during AUTH PLAIN")
	}
	return nil, nil
}
