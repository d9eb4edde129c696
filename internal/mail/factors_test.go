package mail

import (
	"context"
	"strings"
	"testing"
)

func TestFactorsRemovedMail(t *testing.T) {
	s := &recordingSender{}
	r := ResetMailer{Sender: s, From: "usersvc <no-reply@example.com>", PublicURL: "https://accounts.example.com"}
	if err := r.SendFactorsRemoved(context.Background(), "alice@example.com", "Alice\r\nBcc: x@evil"); err != nil {
		t.Fatal(err)
	}
	if len(s.msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(s.msgs))
	}
	m := s.msgs[0]
	if m.Subject != "Your second factors were removed by an administrator" || strings.Contains(m.To, "\n") ||
		!strings.Contains(m.Text, "administrator removed") || ResetToken(m.Text) != "" {
		t.Errorf("mail: To %q Subject %q\n%s", m.To, m.Subject, m.Text)
	}
}
