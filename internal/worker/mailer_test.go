package worker_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/worker"
)

// The mailer runs here with the real pieces around it: the store's
// ProcessOnce (SQLite), the real ResetMailer writing .eml files, and reset
// events taken from the real outbox.

// mailFixture is a stack with one registered user and a directory mailer.
type mailFixture struct {
	st      *stack.Stack
	dir     string
	mailer  mail.ResetMailer
	email   string
	created *user.User
}

func newMailFixture(t *testing.T, ctx context.Context) *mailFixture {
	t.Helper()
	st := stack.New(t, stack.Options{NoEvents: true})
	dir := filepath.Join(t.TempDir(), "mail")
	sender, err := mail.NewDir(dir)
	if err != nil {
		t.Fatalf("mail dir: %v", err)
	}
	f := &mailFixture{st: st, dir: dir, email: "rita@example.com",
		mailer: mail.ResetMailer{Sender: sender, From: "usersvc <no-reply@example.com>",
			PublicURL: "http://127.0.0.1:8080", TTL: 30 * time.Minute}}
	f.created, err = st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: f.email, Password: pw, Name: "Rita Reset"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	drainOutbox(t, ctx, st) // drop the created event
	return f
}

// resetEvent requests a password reset through the service and returns the
// event it wrote to the outbox.
func (f *mailFixture) resetEvent(t *testing.T, ctx context.Context) (events.Message, user.Event) {
	t.Helper()
	if err := f.st.Service.CreatePasswordReset(ctx, f.email); err != nil {
		t.Fatalf("CreatePasswordReset: %v", err)
	}
	return eventOf(t, drainOutbox(t, ctx, f.st), user.EventPasswordResetRequested)
}

func (f *mailFixture) mails(t *testing.T) []mail.Stored {
	t.Helper()
	ms, err := mail.ReadDir(f.dir)
	if err != nil {
		t.Fatalf("read mail dir: %v", err)
	}
	return ms
}

// processedMarks counts the mailer's processed_events rows for eventID.
func (f *mailFixture) processedMarks(t *testing.T, ctx context.Context, eventID string) int {
	t.Helper()
	var n int
	err := f.st.Store.DB().QueryRowContext(ctx,
		`SELECT COUNT(*) FROM processed_events WHERE consumer = ? AND event_id = ?`, "mailer", eventID).Scan(&n)
	if err != nil {
		t.Fatalf("count processed marks: %v", err)
	}
	return n
}

// countingSender counts sends and fails the first failFirst of them; the
// others go to next.
type countingSender struct {
	worker.Sender // only resets are counted; the others go here
	next          worker.Sender
	failFirst     int
	mu            sync.Mutex
	calls         int
}

var errSMTPDown = errors.New("smtp: connection refused")

func (c *countingSender) SendPasswordReset(ctx context.Context, to, name, token string) error {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	if n <= c.failFirst {
		return errSMTPDown
	}
	if c.next == nil {
		return nil
	}
	return c.next.SendPasswordReset(ctx, to, name, token)
}

func (c *countingSender) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// TestMailerSendsResetMailOnce: a reset event becomes one mail to the user
// with a link carrying the event's token, which really resets the password;
// the same event delivered again (one after the other or all at once) sends
// nothing more.
func TestMailerSendsResetMailOnce(t *testing.T) {
	ctx := testenv.Context(t)
	f := newMailFixture(t, ctx)
	h := worker.Mailer(f.st.Store, f.mailer, time.Now, quietLog())
	msg, ev := f.resetEvent(t, ctx)

	if err := h(ctx, msg); err != nil {
		t.Fatalf("handler: %v", err)
	}
	ms := f.mails(t)
	if len(ms) != 1 {
		t.Fatalf("%d mails after one delivery, want 1", len(ms))
	}
	if to := ms[0].Header.Get("To"); !strings.Contains(to, f.email) {
		t.Errorf("mail To %q, want %s", to, f.email)
	}
	if got := mail.ResetToken(ms[0].Text); got != ev.Reset.Token {
		t.Errorf("mail carries token %q, want the event's %q", got, ev.Reset.Token)
	}
	if !strings.Contains(ms[0].Text, f.mailer.Link(ev.Reset.Token)) {
		t.Errorf("mail text lacks the reset link %s:\n%s", f.mailer.Link(ev.Reset.Token), ms[0].Text)
	}
	if n := f.processedMarks(t, ctx, ev.ID); n != 1 {
		t.Errorf("%d processed marks after sending, want 1", n)
	}

	// Redelivery, e.g. after a lost ack.
	if err := h(ctx, msg); err != nil {
		t.Fatalf("handler on redelivery: %v", err)
	}
	if n := len(f.mails(t)); n != 1 {
		t.Errorf("%d mails after the same event twice, want 1", n)
	}

	// The token in the mail is the real one.
	if err := f.st.Service.ResetPassword(ctx, mail.ResetToken(ms[0].Text), "a brand new passphrase"); err != nil {
		t.Errorf("ResetPassword with the mailed token: %v", err)
	}

	// A second reset: several deliveries of it at the same moment (two
	// consumers, or a redelivery racing the first) still send one mail.
	msg2, ev2 := f.resetEvent(t, ctx)
	const parallel = 6
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() { errs <- h(ctx, msg2) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent delivery: %v", err)
		}
	}
	ms = f.mails(t)
	if len(ms) != 2 {
		t.Fatalf("%d mails after two events (the second delivered %d times at once), want 2", len(ms), parallel)
	}
	if got := mail.ResetToken(ms[1].Text); got != ev2.Reset.Token {
		t.Errorf("second mail carries token %q, want %q", got, ev2.Reset.Token)
	}
}

// TestMailerRetriesFailedSend: a failed send is returned as a retryable
// error and leaves no processed mark, so the next delivery sends the mail;
// after that, further deliveries send nothing.
func TestMailerRetriesFailedSend(t *testing.T) {
	ctx := testenv.Context(t)
	f := newMailFixture(t, ctx)
	sender := &countingSender{next: f.mailer, failFirst: 1}
	h := worker.Mailer(f.st.Store, sender, time.Now, quietLog())
	msg, ev := f.resetEvent(t, ctx)

	err := h(ctx, msg)
	if !errors.Is(err, errSMTPDown) {
		t.Fatalf("handler with a failing sender = %v, want an error wrapping the send error", err)
	}
	if events.IsPermanent(err) {
		t.Fatalf("a failed send is permanent (%v): the mail would never be retried", err)
	}
	if n := len(f.mails(t)); n != 0 {
		t.Errorf("%d mails after a failed send, want 0", n)
	}
	if n := f.processedMarks(t, ctx, ev.ID); n != 0 {
		t.Errorf("%d processed marks after a failed send, want 0", n)
	}

	if err := h(ctx, msg); err != nil {
		t.Fatalf("handler on the retry: %v", err)
	}
	ms := f.mails(t)
	if len(ms) != 1 {
		t.Fatalf("%d mails after the retry, want 1", len(ms))
	}
	if got := mail.ResetToken(ms[0].Text); got != ev.Reset.Token {
		t.Errorf("mail carries token %q, want %q", got, ev.Reset.Token)
	}
	if n := f.processedMarks(t, ctx, ev.ID); n != 1 {
		t.Errorf("%d processed marks after the retry, want 1", n)
	}

	if err := h(ctx, msg); err != nil {
		t.Fatalf("handler on a third delivery: %v", err)
	}
	if n := len(f.mails(t)); n != 1 {
		t.Errorf("%d mails after a third delivery, want 1", n)
	}
	if n := sender.count(); n != 2 {
		t.Errorf("sender called %d times, want 2 (one failure, one success)", n)
	}
}

// TestMailerSkipsExpiredReset: a reset whose token has expired by the time
// the event is handled is acknowledged without a mail (the link would not
// work) and without a processed mark.
func TestMailerSkipsExpiredReset(t *testing.T) {
	ctx := testenv.Context(t)
	f := newMailFixture(t, ctx)
	msg, ev := f.resetEvent(t, ctx)
	sender := &countingSender{next: f.mailer}

	for _, now := range []time.Time{ev.Reset.ExpiresAt, ev.Reset.ExpiresAt.Add(time.Microsecond), ev.Reset.ExpiresAt.Add(24 * time.Hour)} {
		h := worker.Mailer(f.st.Store, sender, func() time.Time { return now }, quietLog())
		if err := h(ctx, msg); err != nil {
			t.Errorf("handler at %v (expiry %v) = %v, want nil", now, ev.Reset.ExpiresAt, err)
		}
	}
	// A hand-made event that expired an hour ago, at the real time.
	old := user.Event{ID: "0190a6c8-0000-7000-8000-000000000001", Type: user.EventPasswordResetRequested,
		OccurredAt: time.Now().Add(-2 * time.Hour), UserID: f.created.ID,
		Reset: &user.EventReset{Email: f.email, Name: "Rita", Token: "stale-token", ExpiresAt: time.Now().Add(-time.Hour)}}
	if err := worker.Mailer(f.st.Store, sender, time.Now, quietLog())(ctx, message(t, old)); err != nil {
		t.Errorf("handler on an expired event = %v, want nil", err)
	}

	if n := sender.count(); n != 0 {
		t.Errorf("sender called %d times for expired resets, want 0", n)
	}
	if n := len(f.mails(t)); n != 0 {
		t.Errorf("%d mails for expired resets, want 0", n)
	}
	if n := f.processedMarks(t, ctx, ev.ID) + f.processedMarks(t, ctx, old.ID); n != 0 {
		t.Errorf("%d processed marks for expired resets, want 0", n)
	}

	// Just before expiry it is still sent.
	just := ev.Reset.ExpiresAt.Add(-time.Microsecond)
	if err := worker.Mailer(f.st.Store, sender, func() time.Time { return just }, quietLog())(ctx, msg); err != nil {
		t.Fatalf("handler just before expiry: %v", err)
	}
	if n := len(f.mails(t)); n != 1 {
		t.Errorf("%d mails just before expiry, want 1", n)
	}
}

// TestMailerRejectsMalformedEvents: what no retry can fix is a permanent
// error (dead-lettered at once), and nothing is sent.
func TestMailerRejectsMalformedEvents(t *testing.T) {
	ctx := testenv.Context(t)
	f := newMailFixture(t, ctx)
	sender := &countingSender{}
	h := worker.Mailer(f.st.Store, sender, time.Now, quietLog())

	now := time.Now().UTC()
	reset := func(mod func(*user.Event)) events.Message {
		e := user.Event{ID: "0190a6c8-0000-7000-8000-0000000000aa", Type: user.EventPasswordResetRequested,
			OccurredAt: now, UserID: f.created.ID,
			Reset: &user.EventReset{Email: f.email, Name: "Rita", Token: "tok", ExpiresAt: now.Add(time.Hour)}}
		mod(&e)
		return message(t, e)
	}
	cases := map[string]events.Message{
		"not JSON":          {ID: "x", RoutingKey: string(user.EventPasswordResetRequested), Body: []byte("not json")},
		"empty body":        {ID: "x", RoutingKey: string(user.EventPasswordResetRequested)},
		"JSON array":        {ID: "x", RoutingKey: string(user.EventPasswordResetRequested), Body: []byte(`[1,2]`)},
		"missing id":        reset(func(e *user.Event) { e.ID = "" }),
		"missing user_id":   reset(func(e *user.Event) { e.UserID = "" }),
		"missing time":      reset(func(e *user.Event) { e.OccurredAt = time.Time{} }),
		"wrong type":        reset(func(e *user.Event) { e.Type = user.EventCreated }),
		"password changed":  reset(func(e *user.Event) { e.Type = user.EventPasswordChanged; e.Reset = nil }),
		"no reset":          reset(func(e *user.Event) { e.Reset = nil }),
		"empty reset token": reset(func(e *user.Event) { e.Reset.Token = "" }),
	}
	for name, m := range cases {
		err := h(ctx, m)
		if !events.IsPermanent(err) {
			t.Errorf("%s: handler = %v, want a permanent error", name, err)
		}
	}
	if n := sender.count(); n != 0 {
		t.Errorf("sender called %d times for malformed events, want 0", n)
	}
}

// TestMailerSendsVerificationAndNotices: the account mails other than the
// reset (verification at sign-up and at an email change, the notice to the
// old address, the sign-up attempt) each become one mail to the right
// address, and the verification link really verifies.
func TestMailerSendsVerificationAndNotices(t *testing.T) {
	ctx := testenv.Context(t)
	st := stack.New(t, stack.Options{NoEvents: true})
	dir := filepath.Join(t.TempDir(), "mail")
	sender, err := mail.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := worker.Mailer(st.Store, mail.ResetMailer{Sender: sender, From: "usersvc <no-reply@example.com>",
		PublicURL: "http://127.0.0.1:8080", VerifyTTL: time.Hour}, time.Now, quietLog())
	u, err := st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: "vera@example.com", Password: pw, Name: "Vera"})
	if err != nil {
		t.Fatal(err)
	}
	newEmail, cur := "vera.new@example.com", pw
	if _, err := st.Service.Update(ctx, user.Actor{ID: u.ID, Role: u.Role}, u.ID, user.UpdateInput{Email: &newEmail, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	attempt, err := (user.Event{ID: "0190a8e4-0000-7000-8000-000000000001", Type: user.EventSignupAttempted,
		OccurredAt: time.Now(), UserID: u.ID, Notice: &user.EventNotice{Email: u.Email, Name: u.Name}}).Body()
	if err != nil {
		t.Fatal(err)
	}
	msgs := append(drainOutbox(t, ctx, st), events.Message{ID: "0190a8e4-0000-7000-8000-000000000001",
		RoutingKey: string(user.EventSignupAttempted), Body: attempt})
	for _, m := range msgs {
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
	got := map[string][]mail.Stored{}
	for _, m := range ms {
		got[m.Subject()] = append(got[m.Subject()], m)
	}
	verifications := got["Confirm your email address"]
	if len(verifications) != 2 || len(got["Your email address is being changed"]) != 1 ||
		len(got["Someone tried to create an account with your address"]) != 1 || len(ms) != 4 {
		t.Fatalf("mails: %v", slices.Collect(maps.Keys(got)))
	}
	last := verifications[1]
	if !strings.Contains(last.Header.Get("To"), newEmail) {
		t.Fatalf("second verification went to %s", last.Header.Get("To"))
	}
	if err := st.Service.VerifyEmail(ctx, mail.ResetToken(last.Text)); err != nil {
		t.Fatalf("verify from the mailed link: %v", err)
	}
	bare, err := (user.Event{ID: "0190a8e4-0000-7000-8000-000000000002", Type: user.EventVerificationRequested,
		OccurredAt: time.Now(), UserID: u.ID}).Body()
	if err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, events.Message{ID: "x", RoutingKey: string(user.EventVerificationRequested), Body: bare}); !events.IsPermanent(err) {
		t.Fatalf("an event without its mail: %v, want a permanent error", err)
	}
}
