package mail

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestVerificationMails(t *testing.T) {
	s := &recordingSender{}
	r := ResetMailer{Sender: s, From: "usersvc <no-reply@example.com>", PublicURL: "https://accounts.example.com/", VerifyTTL: 24 * time.Hour}
	ctx := context.Background()
	if err := r.SendVerification(ctx, "alice@example.com", "Alice\r\nBcc: x@evil", "tok+/="); err != nil {
		t.Fatal(err)
	}
	if err := r.SendEmailChangeNotice(ctx, "alice@example.com", "Alice", "alice.new@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := r.SendSignupAttempt(ctx, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.SendVerification(ctx, "alice@example.com", "Alice", ""); err == nil {
		t.Error("a verification without a token was sent")
	}
	if len(s.msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(s.msgs))
	}
	verify, notice, attempt := s.msgs[0], s.msgs[1], s.msgs[2]
	link := "https://accounts.example.com/verify-email?token=tok%2B%2F%3D"
	if r.VerifyLink("tok+/=") != link || !strings.Contains(verify.Text, "\n"+link+"\n") {
		t.Errorf("verification link missing from:\n%s", verify.Text)
	}
	if ResetToken(verify.Text) != "tok+/=" {
		t.Errorf("token does not read back from the verification mail")
	}
	if !strings.Contains(verify.Text, "valid for 1 day") || strings.Contains(verify.To, "\n") {
		t.Errorf("verification mail: To %q\n%s", verify.To, verify.Text)
	}
	if !strings.Contains(notice.Text, "alice.new@example.com") || ResetToken(notice.Text) != "" {
		t.Errorf("change notice:\n%s", notice.Text)
	}
	if !strings.Contains(attempt.Subject, "tried to create an account") || ResetToken(attempt.Text) != "" {
		t.Errorf("sign-up attempt mail: %q\n%s", attempt.Subject, attempt.Text)
	}
}
