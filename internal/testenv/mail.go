package testenv

import (
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
)

// WaitMail waits for a mail with subject to addr in the mail directory dir
// and returns the newest: mail goes out asynchronously (outbox → relay →
// bus → mailer). It is the one way the tests read what the mailer sent.
func WaitMail(t testing.TB, dir, addr, subject string, within time.Duration) mail.Stored {
	t.Helper()
	var found mail.Stored
	Eventually(t, within, "a mail "+subject+" to "+addr+" in "+dir, func() bool {
		msgs, err := mail.ReadDir(dir)
		if err != nil {
			t.Fatalf("read mail: %v", err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Subject() == subject && strings.Contains(msgs[i].Header.Get("To"), addr) {
				found = msgs[i]
				return true
			}
		}
		return false
	})
	return found
}
