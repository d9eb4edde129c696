package worker_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

// TestMailerSendsFactorsRemovedNotice: an admin's removal of a user's
// factor reaches the user as a mail, through the outbox and the mailer
// like every other notice; the owner's own removal mails nothing.
func TestMailerSendsFactorsRemovedNotice(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	dir := filepath.Join(t.TempDir(), "mail")
	sender, err := mail.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := worker.Mailer(st.Store, mail.ResetMailer{Sender: sender, From: "usersvc <no-reply@example.com>",
		PublicURL: "http://127.0.0.1:8080"}, time.Now, quietLog())
	u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "tara@example.com", Password: pw, Name: "Tara"})
	if err != nil {
		t.Fatal(err)
	}
	owner := user.Actor{ID: u.ID, Role: u.Role}
	enrol, err := st.Service.EnrolTOTP(ctx, owner, u.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	code, err := factor.TOTPCode(enrol.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Service.ConfirmTOTP(ctx, owner, u.ID, enrol.FactorID, code); err != nil {
		t.Fatal(err)
	}
	if err := st.Service.RemoveFactor(ctx, user.SystemActor, u.ID, enrol.FactorID); err != nil {
		t.Fatalf("RemoveFactor: %v", err)
	}
	for _, m := range drainOutbox(t, ctx, st) {
		if !slices.Contains(worker.MailerSubscription.RoutingKeys, m.RoutingKey) {
			continue
		}
		if err := h(ctx, m); err != nil {
			t.Fatalf("handler(%s): %v", m.RoutingKey, err)
		}
	}
	ms, err := mail.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var notices []mail.Stored
	for _, m := range ms {
		if m.Subject() == "Your second factors were removed by an administrator" {
			notices = append(notices, m)
		}
	}
	if len(notices) != 1 {
		t.Fatalf("%d factors-removed mails among %d, want 1", len(notices), len(ms))
	}
	if n := notices[0]; !strings.Contains(n.Header.Get("To"), "tara@example.com") || !strings.Contains(n.Text, "Hello Tara") ||
		mail.ResetToken(n.Text) != "" {
		t.Errorf("notice To %q:\n%s", n.Header.Get("To"), n.Text)
	}
}
