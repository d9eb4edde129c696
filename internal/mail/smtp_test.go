package mail

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

func testMessage() Message {
	return Message{
		From:    "User Service <noreply@example.com>",
		To:      "Jane Doe <jane@example.org>",
		Subject: "Hello",
		Text:    "Hi Jane,\nthis is a test.\n",
	}
}

func mustNewSMTP(t *testing.T, cfg SMTPConfig) *SMTP {
	t.Helper()
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

// onlySession returns the single transaction the server recorded.
func onlySession(t *testing.T, srv *testSMTPServer) smtpSession {
	t.Helper()
	sessions := srv.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("server recorded %d transactions, want 1 (commands: %q)", len(sessions), srv.Commands())
	}
	return sessions[0]
}

// parseReceived parses the DATA the server received and decodes the body.
func parseReceived(t *testing.T, data []byte) (netmail.Header, string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse received message: %v\n%s", err, data)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decode quoted-printable body: %v", err)
	}
	return msg.Header, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func TestSMTPPlainLoopback(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{})
	cfg := srv.config()
	cfg.TLS = TLSNone
	s := mustNewSMTP(t, cfg)

	m := testMessage()
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sess := onlySession(t, srv)
	if sess.TLS || sess.AuthUser != "" {
		t.Errorf("TLS=%v AuthUser=%q, want plain unauthenticated session", sess.TLS, sess.AuthUser)
	}
	if sess.Hello != DefaultSMTPHelloName {
		t.Errorf("EHLO name = %q, want %q", sess.Hello, DefaultSMTPHelloName)
	}
	if sess.From != "noreply@example.com" || len(sess.To) != 1 || sess.To[0] != "jane@example.org" {
		t.Errorf("envelope = %q -> %q", sess.From, sess.To)
	}
	h, text := parseReceived(t, sess.Data)
	if got := h.Get("Subject"); got != m.Subject {
		t.Errorf("Subject = %q, want %q", got, m.Subject)
	}
	if text != m.Text {
		t.Errorf("body = %q, want %q", text, m.Text)
	}
	if !srv.hasCommand("QUIT") {
		t.Errorf("client did not QUIT; commands: %q", srv.Commands())
	}
}

func TestSMTPStartTLSAndAuth(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true, user: "mailer", pass: "s3cret"})
	cfg := srv.config() // TLS "" = starttls
	cfg.Username, cfg.Password = "mailer", "s3cret"
	cfg.HelloName = "usersvc.test"
	s := mustNewSMTP(t, cfg)

	if err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sess := onlySession(t, srv)
	if !sess.TLS || sess.AuthUser != "mailer" || sess.Hello != "usersvc.test" {
		t.Errorf("session TLS=%v AuthUser=%q Hello=%q; want TLS, mailer, usersvc.test", sess.TLS, sess.AuthUser, sess.Hello)
	}
	// Credentials must only travel after the upgrade.
	if st, auth := srv.commandIndex("STARTTLS"), srv.commandIndex("AUTH"); st < 0 || auth < st {
		t.Errorf("STARTTLS at %d, AUTH at %d; want AUTH after STARTTLS: %q", st, auth, srv.Commands())
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{implicitTLS: true, user: "mailer", pass: "s3cret"})
	cfg := srv.config()
	cfg.TLS = TLSImplicit
	cfg.Username, cfg.Password = "mailer", "s3cret"
	s := mustNewSMTP(t, cfg)

	if err := s.Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sess := onlySession(t, srv)
	if !sess.TLS || sess.AuthUser != "mailer" {
		t.Errorf("session TLS=%v AuthUser=%q", sess.TLS, sess.AuthUser)
	}
	if srv.hasCommand("STARTTLS") {
		t.Error("client sent STARTTLS on an implicit-TLS connection")
	}
}

func TestSMTPPlainAuthOnLoopback(t *testing.T) {
	// A local relay without TLS: AUTH in plain text is acceptable on
	// loopback, where nothing crosses the network.
	srv := newTestSMTPServer(t, smtpServerOpts{user: "mailer", pass: "pw", authWithoutTLS: true})
	cfg := srv.config()
	cfg.TLS = TLSNone
	cfg.Username, cfg.Password = "mailer", "pw"
	if err := mustNewSMTP(t, cfg).Send(t.Context(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sess := onlySession(t, srv); sess.AuthUser != "mailer" || sess.TLS {
		t.Errorf("session TLS=%v AuthUser=%q", sess.TLS, sess.AuthUser)
	}
}

func TestSMTPAuthFailure(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true, user: "mailer", pass: "right"})
	cfg := srv.config()
	cfg.Username, cfg.Password = "mailer", "wrong-password"
	err := mustNewSMTP(t, cfg).Send(t.Context(), testMessage())
	if err == nil {
		t.Fatal("Send succeeded with a wrong password")
	}
	var perr *textproto.Error
	if !errors.As(err, &perr) || perr.Code != 535 {
		t.Errorf("error = %v, want one wrapping a 535 reply", err)
	}
	if !strings.Contains(err.Error(), "auth") {
		t.Errorf("error %q does not name the auth stage", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error leaks the password: %q", err)
	}
	if srv.hasCommand("MAIL") || len(srv.Sessions()) != 0 {
		t.Errorf("client continued after failed AUTH: %q", srv.Commands())
	}
}

func TestSMTPStartTLSRequiredButNotOffered(t *testing.T) {
	for _, withAuth := range []bool{false, true} {
		t.Run(map[bool]string{false: "no auth", true: "auth"}[withAuth], func(t *testing.T) {
			// The server would even accept AUTH in plain text; the client
			// must still refuse to talk without the upgrade.
			opts := smtpServerOpts{}
			if withAuth {
				opts = smtpServerOpts{user: "mailer", pass: "pw", authWithoutTLS: true}
			}
			srv := newTestSMTPServer(t, opts)
			cfg := srv.config()
			cfg.TLS = TLSStartTLS
			if withAuth {
				cfg.Username, cfg.Password = "mailer", "pw"
			}
			err := mustNewSMTP(t, cfg).Send(t.Context(), testMessage())
			if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
				t.Fatalf("Send error = %v, want one about missing STARTTLS", err)
			}
			for _, verb := range []string{"AUTH", "MAIL", "DATA"} {
				if srv.hasCommand(verb) {
					t.Errorf("client sent %s without TLS: %q", verb, srv.Commands())
				}
			}
		})
	}
}

func TestSMTPVerifiesCertificate(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true})
	cfg := srv.config()
	cfg.RootCAs = x509.NewCertPool() // does not contain the test CA
	cfg.Insecure = true              // must not disable verification
	err := mustNewSMTP(t, cfg).Send(t.Context(), testMessage())
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Fatalf("Send error = %v, want x509.UnknownAuthorityError", err)
	}
	if srv.hasCommand("MAIL") {
		t.Error("client sent MAIL after a failed handshake")
	}
}

func TestSMTPContextAndTimeout(t *testing.T) {
	// Generous bound for "returned promptly": the configured timeouts that
	// must not be waited for are a minute.
	const slow = 3 * time.Second

	t.Run("cancel while waiting for greeting", func(t *testing.T) {
		srv := newTestSMTPServer(t, smtpServerOpts{stall: "greeting"})
		cfg := srv.config()
		cfg.TLS, cfg.Timeout = TLSNone, time.Minute
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := mustNewSMTP(t, cfg).Send(ctx, testMessage())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send error = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > slow {
			t.Errorf("Send returned after %v, want prompt return on cancel", d)
		}
	})

	t.Run("context deadline while server holds DATA", func(t *testing.T) {
		srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true, stall: "data"})
		cfg := srv.config()
		cfg.Timeout = time.Minute
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := mustNewSMTP(t, cfg).Send(ctx, testMessage())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send error = %v, want context.DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "data") {
			t.Errorf("error %q does not name the DATA stage", err)
		}
		if d := time.Since(start); d > slow {
			t.Errorf("Send returned after %v", d)
		}
	})

	t.Run("config timeout", func(t *testing.T) {
		srv := newTestSMTPServer(t, smtpServerOpts{stall: "greeting"})
		cfg := srv.config()
		cfg.TLS, cfg.Timeout = TLSNone, 200*time.Millisecond
		start := time.Now()
		err := mustNewSMTP(t, cfg).Send(context.Background(), testMessage())
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send error = %v, want an I/O deadline error (not a context error)", err)
		}
		if !strings.Contains(err.Error(), "timeout of 200ms") {
			t.Errorf("error %q does not mention the configured timeout", err)
		}
		if d := time.Since(start); d > slow {
			t.Errorf("Send returned after %v", d)
		}
	})

	t.Run("already cancelled", func(t *testing.T) {
		srv := newTestSMTPServer(t, smtpServerOpts{})
		cfg := srv.config()
		cfg.TLS = TLSNone
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := mustNewSMTP(t, cfg).Send(ctx, testMessage()); !errors.Is(err, context.Canceled) {
			t.Fatalf("Send error = %v, want context.Canceled", err)
		}
		if n := srv.Accepted(); n != 0 {
			t.Errorf("server accepted %d connections for a cancelled send", n)
		}
	})
}

func TestSMTPNonASCIIRoundTrip(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true})
	s := mustNewSMTP(t, srv.config())

	m := Message{
		From:    "Jürgen Müller <noreply@example.com>",
		To:      "Zoë Ångström <zoe@example.org>",
		Subject: "Passwort zurücksetzen – schnell 🔑 " + strings.Repeat("Grüße aus Köln ", 8),
		Text: "Grüße, Zoë!\n" +
			".a line starting with a dot\n" +
			".\n" +
			"trailing spaces   \n" +
			"tab\tand = sign and =3D literal\n" +
			strings.Repeat("lange Zeile mit Umlauten äöü ", 12) + "\n" +
			"日本語のテキスト 🔑\n" +
			"no final newline",
	}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sess := onlySession(t, srv)
	for i, b := range sess.Data {
		if b >= 0x80 {
			t.Fatalf("received data has 8-bit byte %#x at %d; want 7-bit quoted-printable", b, i)
		}
	}
	for _, line := range strings.Split(string(sess.Data), "\n") {
		if len(line) > 78 {
			t.Errorf("line longer than 78 characters: %q", line)
		}
	}

	h, text := parseReceived(t, sess.Data)
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decode Subject: %v", err)
	}
	if subject != m.Subject {
		t.Errorf("Subject = %q, want %q", subject, m.Subject)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Jürgen Müller" || from[0].Address != "noreply@example.com" {
		t.Errorf("From = %v (err %v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoë Ångström" || to[0].Address != "zoe@example.org" {
		t.Errorf("To = %v (err %v)", to, err)
	}
	if want := m.Text + "\n"; text != want {
		t.Errorf("body mismatch\n got: %q\nwant: %q", text, want)
	}
}

func TestSMTPResetMailRoundTrip(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{startTLS: true})
	r := ResetMailer{
		Sender:    mustNewSMTP(t, srv.config()),
		From:      "User Service <noreply@example.com>",
		PublicURL: "https://accounts.example.com/",
		TTL:       time.Hour,
	}
	token := strings.Repeat("Zm9vYmFy+/=", 10) // long and full of characters that need escaping
	if err := r.SendPasswordReset(t.Context(), "jane@example.org", "Jane", token); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	_, text := parseReceived(t, onlySession(t, srv).Data)
	if got := ResetToken(text); got != token {
		t.Errorf("ResetToken = %q, want %q", got, token)
	}
	if !strings.Contains(text, r.Link(token)) || !strings.Contains(text, "valid for 1 hour") {
		t.Errorf("unexpected reset text:\n%s", text)
	}
}

// TestSMTPServerTransactionCommands checks the test server's RSET and NOOP
// handling directly with net/smtp, so the server the sender tests rely on
// is itself known to follow the protocol.
func TestSMTPServerTransactionCommands(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{})
	c, err := smtp.Dial(srv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		name string
		do   func() error
	}{
		{"NOOP", c.Noop},
		{"MAIL", func() error { return c.Mail("discarded@example.com") }},
		{"RSET", c.Reset},
		{"MAIL", func() error { return c.Mail("kept@example.com") }},
		{"RCPT", func() error { return c.Rcpt("rcpt@example.org") }},
		{"DATA", func() error {
			w, err := c.Data()
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, "Subject: x\r\n\r\nbody\r\n"); err != nil {
				return err
			}
			return w.Close()
		}},
		{"QUIT", c.Quit},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if sess := onlySession(t, srv); sess.From != "kept@example.com" {
		t.Errorf("From = %q, want the sender given after RSET", sess.From)
	}
}

func TestSMTPRejectsInvalidMessageBeforeConnecting(t *testing.T) {
	srv := newTestSMTPServer(t, smtpServerOpts{})
	cfg := srv.config()
	cfg.TLS = TLSNone
	m := testMessage()
	m.Subject = "hi\r\nBcc: victim@example.net"
	if err := mustNewSMTP(t, cfg).Send(t.Context(), m); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("Send error = %v, want ErrInvalidMessage", err)
	}
	if n := srv.Accepted(); n != 0 {
		t.Errorf("connected to the server (%d) for an invalid message", n)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       SMTPConfig
		wantField string // "" = valid
	}{
		{"minimal", SMTPConfig{Host: "smtp.example.com"}, ""},
		{"full", SMTPConfig{Host: "smtp.example.com", Port: 465, TLS: "TLS", Username: "u", Password: "p", Timeout: time.Second, HelloName: "svc.example.com"}, ""},
		{"empty host", SMTPConfig{}, "Host"},
		{"host with port", SMTPConfig{Host: "smtp.example.com:25"}, "Host"},
		{"bracketed ipv6", SMTPConfig{Host: "[::1]", TLS: "none"}, "Host"},
		{"host with space", SMTPConfig{Host: "smtp example"}, "Host"},
		{"bare ipv6 loopback plain", SMTPConfig{Host: "::1", TLS: "none"}, ""},
		{"localhost plain", SMTPConfig{Host: "LocalHost", TLS: "None"}, ""},
		{"loopback plain with auth", SMTPConfig{Host: "127.0.0.1", TLS: "none", Username: "u", Password: "p"}, ""},
		{"negative port", SMTPConfig{Host: "h", Port: -1}, "Port"},
		{"port too big", SMTPConfig{Host: "h", Port: 70000}, "Port"},
		{"unknown tls", SMTPConfig{Host: "h", TLS: "ssl"}, "TLS"},
		{"plain to remote", SMTPConfig{Host: "smtp.example.com", TLS: "none"}, "TLS"},
		{"plain to remote with auth", SMTPConfig{Host: "10.0.0.1", TLS: "none", Username: "u"}, "TLS"},
		{"plain to remote insecure", SMTPConfig{Host: "smtp.example.com", TLS: "none", Insecure: true, Username: "u"}, ""},
		{"password without user", SMTPConfig{Host: "h", Password: "p"}, "Password"},
		{"NUL in user", SMTPConfig{Host: "h", Username: "a\x00b"}, "Username"},
		{"NUL in password", SMTPConfig{Host: "h", Username: "a", Password: "x\x00"}, "Password"},
		{"negative timeout", SMTPConfig{Host: "h", Timeout: -time.Second}, "Timeout"},
		{"hello with space", SMTPConfig{Host: "h", HelloName: "a b"}, "HelloName"},
		{"hello with CRLF", SMTPConfig{Host: "h", HelloName: "a\r\nRSET"}, "HelloName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantField == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantField != "" && (err == nil || !strings.Contains(err.Error(), "SMTPConfig."+tt.wantField+":")):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantField)
			}
			if _, nerr := NewSMTP(tt.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("NewSMTP error %v disagrees with Validate error %v", nerr, err)
			}
		})
	}
}

func TestNewSMTPDefaults(t *testing.T) {
	s := mustNewSMTP(t, SMTPConfig{Host: "smtp.example.com"})
	if s.cfg.Port != 587 || s.cfg.TLS != TLSStartTLS || s.cfg.Timeout != 10*time.Second || s.cfg.HelloName != "localhost" {
		t.Errorf("defaults = %+v", s.cfg)
	}
	if s.addr != "smtp.example.com:587" {
		t.Errorf("addr = %q", s.addr)
	}
	if s := mustNewSMTP(t, SMTPConfig{Host: "smtp.example.com", TLS: "tls"}); s.cfg.Port != 465 {
		t.Errorf("implicit TLS default port = %d, want 465", s.cfg.Port)
	}
	if s := mustNewSMTP(t, SMTPConfig{Host: "::1", TLS: "none", Port: 2525}); s.addr != "[::1]:2525" {
		t.Errorf("IPv6 addr = %q", s.addr)
	}
}
