// Package mail renders and delivers the service's outgoing e-mail.
//
// The service only ever sends short plain-text notifications (today: the
// password-reset link), so the package deliberately stays small: a Message
// is rendered into a single text/plain, quoted-printable RFC 5322 message by
// Message.Bytes, and a Sender delivers it. Two senders exist:
//
//   - SMTP talks to a relay with net/smtp, with STARTTLS or implicit TLS and
//     AUTH PLAIN; plain-text connections are only possible where nobody can
//     sniff them (loopback) or when explicitly allowed.
//   - Dir drops each message as an .eml file into a directory. It is the
//     embedded default, so a development setup works without a mail server,
//     and tests of other packages read the messages back with ReadDir.
//
// ResetMailer builds the password-reset mail on top of any Sender.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one outgoing plain-text mail with a single recipient.
//
// The service never needs Cc, attachments or HTML, and keeping one recipient
// per message means an SMTP rejection is always attributable to exactly one
// address.
type Message struct {
	From    string // "Name <addr>" or addr
	To      string // "Name <addr>" or addr; exactly one address
	Subject string
	Text    string // plain-text body, UTF-8
}

// Sender delivers one message.
//
// Implementations must be safe for concurrent use: request handlers send
// mail from many goroutines at once.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrInvalidMessage is wrapped by every error that is caused by the
// message's content rather than by its delivery (bad address, header
// injection attempt, invalid UTF-8). Callers can use errors.Is to tell
// "the input was wrong" (do not retry) from "the relay failed" (retry).
var ErrInvalidMessage = errors.New("mail: invalid message")

const (
	// foldAt is the line length RFC 5322 section 2.1.1 asks header lines
	// to stay below; longer headers are folded at spaces.
	foldAt = 78
	// maxLine is the hard RFC 5322 limit (excluding CRLF). A header that
	// cannot be folded below it is rejected rather than sent broken.
	maxLine = 998
)

// Bytes renders m as an RFC 5322 message with CRLF line ends:
// Date, From, To, Subject (RFC 2047-encoded when non-ASCII), Message-ID
// (random, at the From domain), MIME-Version, and a text/plain;
// charset=utf-8 body in quoted-printable.
//
// Quoted-printable keeps every line 7-bit and short, so the message survives
// any relay unchanged regardless of 8BITMIME support or line-length limits.
// A body that does not end in a newline gets one, so the rendered message
// ends with CRLF and decodes the same whether it went through SMTP (whose
// DATA terminator forces a final CRLF) or was stored by Dir.
//
// CR or LF in From, To or Subject is rejected: such values usually come from
// user input (a display name, an address) and would otherwise let the user
// inject extra headers or recipients. Other control characters and invalid
// UTF-8 are rejected too. All these errors wrap ErrInvalidMessage and never
// echo the offending value, which may be attacker-controlled.
func (m Message) Bytes(now time.Time) ([]byte, error) {
	from, err := parseAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	return m.render(now, from, to)
}

// render does the work of Bytes once the addresses are parsed; the SMTP
// sender needs the parsed addresses for the envelope as well.
func (m Message) render(now time.Time, from, to *netmail.Address) ([]byte, error) {
	if err := checkHeaderValue("Subject", m.Subject); err != nil {
		return nil, err
	}
	if !utf8.ValidString(m.Text) {
		return nil, fmt.Errorf("%w: Text is not valid UTF-8", ErrInvalidMessage)
	}

	// ParseAddress guarantees an addr-spec with an "@".
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]

	var b bytes.Buffer
	headers := []struct{ name, value string }{
		{"Date", now.Format(time.RFC1123Z)},
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		// A random left part makes the ID unique without any state; the
		// From domain is the conventional right part (RFC 5322 3.6.4).
		{"Message-ID", "<" + rand.Text() + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}
	for _, h := range headers {
		if err := writeHeader(&b, h.name, h.value); err != nil {
			return nil, err
		}
	}
	b.WriteString("\r\n")

	text := m.Text
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	// The quoted-printable writer turns every LF, CR or CRLF into CRLF,
	// so callers may use Go's usual "\n".
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("mail: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("mail: encode body: %w", err)
	}
	return b.Bytes(), nil
}

// parseAddress validates one address header value and parses it.
func parseAddress(field, v string) (*netmail.Address, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrInvalidMessage, field)
	}
	if err := checkHeaderValue(field, v); err != nil {
		return nil, err
	}
	a, err := netmail.ParseAddress(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMessage, field, err)
	}
	return a, nil
}

// checkHeaderValue rejects values that would break out of their header line
// (CR, LF) or are not valid in a header at all (other control characters,
// invalid UTF-8).
func checkHeaderValue(field, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("%w: %s contains CR or LF (header injection)", ErrInvalidMessage, field)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidMessage, field)
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalidMessage, field)
		}
	}
	return nil
}

// writeHeader writes "Name: value" CRLF, folding at spaces so lines stay
// within 78 characters where possible. RFC 2047 encoded-words produced by
// mime.QEncoding are space-separated, so long encoded subjects fold cleanly
// and decoders drop the whitespace between adjacent encoded-words.
func writeHeader(b *bytes.Buffer, name, value string) error {
	b.WriteString(name)
	b.WriteByte(':')
	lineLen := len(name) + 1
	for _, w := range strings.Split(value, " ") {
		// Folding is allowed even before the first word: an RFC 2047
		// encoded-word may be 75 characters long, which does not fit
		// after "Subject: ".
		if w != "" && lineLen+1+len(w) > foldAt {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		lineLen += 1 + len(w)
		if lineLen > maxLine {
			return fmt.Errorf("%w: %s header has a word longer than %d characters", ErrInvalidMessage, name, maxLine)
		}
	}
	b.WriteString("\r\n")
	return nil
}
