package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is a small but real SMTP server (RFC 5321 subset plus STARTTLS
// and AUTH PLAIN) so that the SMTP sender is tested against the protocol,
// not against a mock of net/smtp.

// smtpServerOpts selects the server's behaviour.
type smtpServerOpts struct {
	startTLS    bool // advertise and accept STARTTLS
	implicitTLS bool // TLS from the first byte (SMTPS)
	// user/pass enable AUTH PLAIN; when set, MAIL requires authentication.
	user, pass string
	// authWithoutTLS also advertises AUTH on unencrypted connections
	// (normally AUTH is only offered after STARTTLS, as real servers do).
	authWithoutTLS bool
	// stall makes the server stop answering: "greeting" before the 220
	// banner, "data" after receiving the message but before the 250.
	stall string
}

// smtpSession is one completed mail transaction as the server saw it.
type smtpSession struct {
	Hello    string
	TLS      bool
	AuthUser string
	From     string
	To       []string
	Data     []byte // dot-unstuffed, LF line ends (textproto.DotReader)
}

type testSMTPServer struct {
	opts      smtpServerOpts
	ln        net.Listener
	tlsConfig *tls.Config
	pool      *x509.CertPool
	quit      chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted int
	commands []string
	sessions []smtpSession
}

// testCert is a self-signed certificate for 127.0.0.1 and localhost,
// generated once per test binary.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "usersvc mail test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

func newTestSMTPServer(t *testing.T, opts smtpServerOpts) *testSMTPServer {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatalf("generate certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testSMTPServer{
		opts:      opts,
		ln:        ln,
		tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		pool:      pool,
		quit:      make(chan struct{}),
		conns:     map[net.Conn]struct{}{},
	}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(s.close)
	return s
}

// config returns a client configuration pointing at this server and
// trusting its certificate.
func (s *testSMTPServer) config() SMTPConfig {
	addr := s.ln.Addr().(*net.TCPAddr)
	return SMTPConfig{
		Host:    "127.0.0.1",
		Port:    addr.Port,
		RootCAs: s.pool,
		Timeout: 5 * time.Second,
	}
}

func (s *testSMTPServer) close() {
	close(s.quit)
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testSMTPServer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.accepted++
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.handle(c)
		})
	}
}

func (s *testSMTPServer) Sessions() []smtpSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpSession(nil), s.sessions...)
}

func (s *testSMTPServer) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *testSMTPServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// hasCommand reports whether a command line starting with verb was received.
func (s *testSMTPServer) hasCommand(verb string) bool {
	return s.commandIndex(verb) >= 0
}

func (s *testSMTPServer) commandIndex(verb string) int {
	for i, c := range s.Commands() {
		if strings.HasPrefix(strings.ToUpper(c), verb) {
			return i
		}
	}
	return -1
}

func (s *testSMTPServer) handle(conn net.Conn) {
	isTLS := false
	if s.opts.implicitTLS {
		tc := tls.Server(conn, s.tlsConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, isTLS = tc, true
	}
	if s.opts.stall == "greeting" {
		<-s.quit
		return
	}
	tp := textproto.NewConn(conn)
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	authAvailable := func() bool { return s.opts.user != "" && (isTLS || s.opts.authWithoutTLS) }

	reply("220 test.local ESMTP ready")
	var (
		hello  string
		authed bool
		inMail bool
		sess   smtpSession
	)
	resetTx := func() {
		inMail = false
		sess = smtpSession{AuthUser: sess.AuthUser}
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			hello = arg
			resetTx()
			lines := []string{"test.local greets " + arg, "8BITMIME"}
			if s.opts.startTLS && !isTLS {
				lines = append(lines, "STARTTLS")
			}
			if authAvailable() {
				lines = append(lines, "AUTH LOGIN PLAIN")
			}
			lines = append(lines, "HELP")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250%s%s", sep, l)
			}
		case "HELO":
			hello = arg
			resetTx()
			reply("250 test.local")
		case "STARTTLS":
			if !s.opts.startTLS || isTLS {
				reply("502 5.5.1 STARTTLS not available")
				continue
			}
			reply("220 2.0.0 ready to start TLS")
			tc := tls.Server(conn, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, isTLS = tc, true
			tp = textproto.NewConn(conn)
			// RFC 3207: the client must start over with EHLO.
			hello, authed = "", false
			sess = smtpSession{}
			resetTx()
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			switch {
			case !authAvailable() || authed:
				reply("503 5.5.1 AUTH not available")
				continue
			case !strings.EqualFold(mech, "PLAIN"):
				reply("504 5.5.4 mechanism not supported")
				continue
			}
			if initial == "" {
				reply("334 ")
				if initial, err = tp.ReadLine(); err != nil {
					return
				}
			}
			if initial == "*" {
				reply("501 5.0.0 AUTH aborted")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(initial)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 {
				reply("501 5.5.2 malformed AUTH PLAIN response")
				continue
			}
			if parts[1] != s.opts.user || parts[2] != s.opts.pass {
				reply("535 5.7.8 authentication credentials invalid")
				continue
			}
			authed = true
			sess.AuthUser = parts[1]
			reply("235 2.7.0 authentication successful")
		case "MAIL":
			from, ok := pathArg(arg, "FROM:")
			switch {
			case hello == "":
				reply("503 5.5.1 say EHLO first")
			case s.opts.user != "" && !authed:
				reply("530 5.7.0 authentication required")
			case inMail:
				reply("503 5.5.1 nested MAIL")
			case !ok:
				reply("501 5.5.4 syntax: MAIL FROM:<address>")
			default:
				inMail = true
				sess.From = from
				reply("250 2.1.0 sender ok")
			}
		case "RCPT":
			to, ok := pathArg(arg, "TO:")
			switch {
			case !inMail:
				reply("503 5.5.1 need MAIL first")
			case !ok:
				reply("501 5.5.4 syntax: RCPT TO:<address>")
			default:
				sess.To = append(sess.To, to)
				reply("250 2.1.5 recipient ok")
			}
		case "DATA":
			if !inMail || len(sess.To) == 0 {
				reply("503 5.5.1 need RCPT first")
				continue
			}
			reply("354 end data with <CR><LF>.<CR><LF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			if s.opts.stall == "data" {
				<-s.quit
				return
			}
			sess.Hello, sess.TLS, sess.Data = hello, isTLS, data
			s.mu.Lock()
			s.sessions = append(s.sessions, sess)
			s.mu.Unlock()
			resetTx()
			reply("250 2.0.0 queued as %d", len(data))
		case "RSET":
			resetTx()
			reply("250 2.0.0 reset")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		case "*":
			// The client aborting a failed AUTH exchange.
			reply("501 5.0.0 AUTH aborted")
		default:
			reply("502 5.5.2 command not recognized")
		}
	}
}

// pathArg parses "FROM:<addr> [params]" (prefix case-insensitive) and
// returns addr; "<>" (the null reverse-path) yields "".
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}
