package mail

import (
	"bytes"
	"context"
	"errors"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingSender keeps messages in memory.
type recordingSender struct {
	mu   sync.Mutex
	msgs []Message
	err  error
}

func (s *recordingSender) Send(_ context.Context, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.msgs = append(s.msgs, m)
	return nil
}

func TestResetMailerLink(t *testing.T) {
	tests := []struct {
		publicURL, token, want string
	}{
		{"http://127.0.0.1:8080", "abc", "http://127.0.0.1:8080/reset-password?token=abc"},
		{"http://127.0.0.1:8080/", "abc", "http://127.0.0.1:8080/reset-password?token=abc"},
		{"https://example.com/accounts//", "abc", "https://example.com/accounts/reset-password?token=abc"},
		{"https://example.com", "a+b/c=d&e f", "https://example.com/reset-password?token=a%2Bb%2Fc%3Dd%26e+f"},
		{"https://example.com", "ä#?", "https://example.com/reset-password?token=%C3%A4%23%3F"},
		{"https://example.com", "-_.~", "https://example.com/reset-password?token=-_.~"},
	}
	for _, tt := range tests {
		r := ResetMailer{PublicURL: tt.publicURL}
		got := r.Link(tt.token)
		if got != tt.want {
			t.Errorf("Link(%q) with PublicURL %q = %q, want %q", tt.token, tt.publicURL, got, tt.want)
		}
		u, err := url.Parse(got)
		if err != nil || u.Query().Get("token") != tt.token || u.Path == "" || !strings.HasSuffix(u.Path, ResetPath) {
			t.Errorf("Link %q does not parse back to token %q (err %v)", got, tt.token, err)
		}
		if ResetToken("Open:\n\n"+got+"\n") != tt.token {
			t.Errorf("ResetToken does not recover %q from %q", tt.token, got)
		}
	}
}

func TestResetMailerMessage(t *testing.T) {
	s := &recordingSender{}
	r := ResetMailer{Sender: s, From: "User Service <noreply@example.com>", PublicURL: "http://127.0.0.1:8080", TTL: 30 * time.Minute}
	if err := r.SendPasswordReset(t.Context(), "jane@example.org", "Jane", "tok123"); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	if len(s.msgs) != 1 {
		t.Fatalf("sent %d messages", len(s.msgs))
	}
	m := s.msgs[0]
	if m.From != r.From || m.To != `"Jane" <jane@example.org>` || m.Subject != "Reset your password" {
		t.Errorf("message = %+v", m)
	}
	wantText := "Hello Jane,\n\n" +
		"we received a request to reset the password of your account.\n" +
		"To choose a new password, open this link:\n\n" +
		"http://127.0.0.1:8080/reset-password?token=tok123\n\n" +
		"The link is valid for 30 minutes.\n" +
		"If you did not ask for a password reset, you can ignore this mail;\n" +
		"your password stays unchanged.\n"
	if m.Text != wantText {
		t.Errorf("text =\n%s\nwant\n%s", m.Text, wantText)
	}
	if _, err := m.Bytes(testNow); err != nil {
		t.Errorf("reset message does not render: %v", err)
	}
}

func TestResetMailerHostileName(t *testing.T) {
	s := &recordingSender{}
	r := ResetMailer{Sender: s, From: "noreply@example.com", PublicURL: "http://127.0.0.1:8080"}
	name := "Mallory\r\nBcc: victim@example.net\x00 \"quoted\" <x@y>"
	if err := r.SendPasswordReset(t.Context(), "mallory@example.org", name, "tok"); err != nil {
		t.Fatalf("SendPasswordReset: %v", err)
	}
	m := s.msgs[0]
	if strings.ContainsAny(m.To, "\r\n\x00") || strings.ContainsAny(m.Text[:strings.Index(m.Text, "\n")], "\r\x00") {
		t.Fatalf("control characters survived: To=%q Text=%q", m.To, m.Text)
	}
	if strings.Contains(m.Text, "valid for") {
		t.Errorf("TTL 0 should omit the validity sentence:\n%s", m.Text)
	}
	raw, err := m.Bytes(testNow)
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	h, err := parseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "mallory@example.org" {
		t.Errorf("To = %v (err %v); want exactly the one recipient", to, err)
	}
	if h.Get("Bcc") != "" {
		t.Error("Bcc header was injected")
	}
}

func TestResetMailerNoName(t *testing.T) {
	s := &recordingSender{}
	r := ResetMailer{Sender: s, From: "noreply@example.com", PublicURL: "http://127.0.0.1:8080", TTL: 90 * time.Minute}
	if err := r.SendPasswordReset(t.Context(), "jane@example.org", "  ", "tok"); err != nil {
		t.Fatal(err)
	}
	m := s.msgs[0]
	if m.To != "<jane@example.org>" || !strings.HasPrefix(m.Text, "Hello,\n") || !strings.Contains(m.Text, "valid for 1 hour and 30 minutes.") {
		t.Errorf("message = %+v", m)
	}
}

func TestResetMailerErrors(t *testing.T) {
	sendErr := errors.New("relay down")
	const token = "secret-token-value"
	ok := ResetMailer{Sender: &recordingSender{}, From: "noreply@example.com", PublicURL: "https://example.com"}
	tests := []struct {
		name   string
		r      ResetMailer
		to     string
		token  string
		target error
	}{
		{"nil sender", ResetMailer{From: ok.From, PublicURL: ok.PublicURL}, "a@example.org", token, nil},
		{"empty token", ok, "a@example.org", "", nil},
		{"empty PublicURL", ResetMailer{Sender: ok.Sender, From: ok.From}, "a@example.org", token, nil},
		{"relative PublicURL", ResetMailer{Sender: ok.Sender, From: ok.From, PublicURL: "127.0.0.1:8080"}, "a@example.org", token, nil},
		{"ftp PublicURL", ResetMailer{Sender: ok.Sender, From: ok.From, PublicURL: "ftp://example.com"}, "a@example.org", token, nil},
		{"PublicURL with query", ResetMailer{Sender: ok.Sender, From: ok.From, PublicURL: "https://example.com/?x=1"}, "a@example.org", token, nil},
		{"bad recipient", ok, "not-an-address", token, ErrInvalidMessage},
		{"injected recipient", ok, "a@example.org\r\nBcc: b@example.net", token, ErrInvalidMessage},
		{"sender failure", ResetMailer{Sender: &recordingSender{err: sendErr}, From: ok.From, PublicURL: ok.PublicURL}, "a@example.org", token, sendErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.SendPasswordReset(t.Context(), tt.to, "", tt.token)
			if err == nil {
				t.Fatal("SendPasswordReset succeeded")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error = %v, want it to wrap %v", err, tt.target)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestResetToken(t *testing.T) {
	tests := []struct{ text, want string }{
		{"", ""},
		{"no link here", ""},
		{"http://x/reset-password?other=1", ""},
		{"http://x/reset-password?token=", ""},
		{"Open <https://x.example/reset-password?token=a%2Bb> now", "a+b"},
		{"line\r\nhttp://x/reset-password?lang=de&token=abc\r\nbye", "abc"},
		{"first http://x/?token=one then http://x/?token=two", "one"},
	}
	for _, tt := range tests {
		if got := ResetToken(tt.text); got != tt.want {
			t.Errorf("ResetToken(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := map[time.Duration]string{
		time.Second:                        "1 second",
		45 * time.Second:                   "45 seconds",
		time.Minute:                        "1 minute",
		89 * time.Second:                   "1 minute",
		30 * time.Minute:                   "30 minutes",
		time.Hour:                          "1 hour",
		90 * time.Minute:                   "1 hour and 30 minutes",
		2 * time.Hour:                      "2 hours",
		24 * time.Hour:                     "1 day",
		25 * time.Hour:                     "25 hours",
		72 * time.Hour:                     "3 days",
		72*time.Hour + 59*time.Second:      "3 days",
		26*time.Hour + 5*time.Minute:       "26 hours and 5 minutes",
		time.Hour + 30*time.Second:         "1 hour",
		59*time.Minute + 59*time.Second:    "59 minutes",
		119*time.Second + time.Millisecond: "1 minute",
	}
	for d, want := range tests {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func parseHeader(raw []byte) (netmail.Header, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}
