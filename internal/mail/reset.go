package mail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ResetPath is the path of the password-reset page, relative to PublicURL.
const ResetPath = "/reset-password"

// ResetMailer turns a password-reset token into a mail containing the link
// {PublicURL}/reset-password?token=TOKEN.
type ResetMailer struct {
	Sender    Sender
	From      string
	PublicURL string        // e.g. "http://127.0.0.1:8080"; trailing slash tolerated
	TTL       time.Duration // validity stated in the text ("valid for 30 minutes"); <= 0 omits the sentence
	// VerifyTTL is TTL for the verification mail (verify.go).
	VerifyTTL time.Duration
}

// Link returns the reset link for token. It is exported so that tests and
// documentation use exactly the format the mail contains. The token is
// query-escaped, so any token alphabet survives; ResetToken reverses it.
func (r ResetMailer) Link(token string) string {
	return strings.TrimRight(r.PublicURL, "/") + ResetPath + "?token=" + url.QueryEscape(token)
}

// SendPasswordReset mails the reset link for token to the address to,
// greeting the user by name (which may be empty).
//
// name usually comes from user input, so control characters in it are
// replaced by spaces rather than rejected: a strange display name must not
// make password recovery impossible, and the To header stays safe because
// net/mail quotes or RFC 2047-encodes the name. Errors never contain the
// token.
func (r ResetMailer) SendPasswordReset(ctx context.Context, to, name, token string) error {
	if token == "" {
		return errors.New("mail: password reset: empty token")
	}
	return r.send(ctx, "password reset", to, name, "Reset your password", func(name string) string { return r.text(name, token) })
}

// send checks the configuration, cleans name and mails text(name) to to,
// greeting them by name. what names the mail in errors.
func (r ResetMailer) send(ctx context.Context, what, to, name, subject string, text func(name string) string) error {
	if r.Sender == nil {
		return fmt.Errorf("mail: %s: no Sender configured", what)
	}
	if err := checkPublicURL(r.PublicURL); err != nil {
		return fmt.Errorf("mail: %s: PublicURL: %w", what, err)
	}
	name = cleanName(name)
	rcpt, err := parseAddress("To", to)
	if err != nil {
		return fmt.Errorf("mail: %s: %w", what, err)
	}
	rcpt.Name = name

	m := Message{
		From:    r.From,
		To:      rcpt.String(),
		Subject: subject,
		Text:    text(name),
	}
	if err := r.Sender.Send(ctx, m); err != nil {
		return fmt.Errorf("send %s mail: %w", what, err)
	}
	return nil
}

// text is the body of the reset mail. The link stands alone on its line so
// mail clients linkify it without swallowing adjacent punctuation.
func (r ResetMailer) text(name, token string) string {
	var b strings.Builder
	greet(&b, name)
	b.WriteString("we received a request to reset the password of your account.\n")
	b.WriteString("To choose a new password, open this link:\n\n")
	b.WriteString(r.Link(token))
	b.WriteString("\n\n")
	if r.TTL > 0 {
		fmt.Fprintf(&b, "The link is valid for %s.\n", humanDuration(r.TTL))
	}
	b.WriteString("If you did not ask for a password reset, you can ignore this mail;\n")
	b.WriteString("your password stays unchanged.\n")
	return b.String()
}

// greet writes the salutation, by name if there is one.
func greet(b *strings.Builder, name string) {
	if name != "" {
		fmt.Fprintf(b, "Hello %s,\n\n", name)
	} else {
		b.WriteString("Hello,\n\n")
	}
}

// checkPublicURL makes sure Link produces an absolute, clickable URL; a
// query or fragment in PublicURL would end up in front of the path.
func checkPublicURL(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		return errors.New("has no host")
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return errors.New("must not contain a query or fragment")
	}
	return nil
}

// cleanName turns control characters (including CR/LF) into spaces and
// collapses runs of whitespace.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name)
	return strings.Join(strings.Fields(name), " ")
}

// humanDuration renders d for the mail text, e.g. "30 minutes",
// "1 hour and 30 minutes", "2 days". It truncates rather than rounds so the
// mail never promises more time than the token really has.
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return plural(int(d/time.Second), "second")
	}
	d = d.Truncate(time.Minute)
	days, hours, minutes := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	if days > 0 && minutes == 0 && hours == 0 {
		return plural(days, "day")
	}
	hours += 24 * days
	switch {
	case hours == 0:
		return plural(minutes, "minute")
	case minutes == 0:
		return plural(hours, "hour")
	default:
		return plural(hours, "hour") + " and " + plural(minutes, "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
