// Package worker holds the event consumers: the mailer, which sends
// password-reset, verification and notice mail, and the search indexer, which keeps the search index
// current. They run in `usersvc worker` (on RabbitMQ), or inside the service
// process on the in-process bus of the embedded default.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// Processed records which events a consumer has handled (the store's
// processed_events table), making a consumer with side effects idempotent.
type Processed interface {
	ProcessOnce(ctx context.Context, consumer, eventID string, fn func(context.Context) error) (bool, error)
}

// Sender delivers every mail of the mailer (mail.ResetMailer).
type Sender interface {
	SendPasswordReset(ctx context.Context, to, name, token string) error
	SendVerification(ctx context.Context, to, name, token string) error
	SendEmailChangeNotice(ctx context.Context, to, name, newEmail string) error
	SendSignupAttempt(ctx context.Context, to, name string) error
	SendFactorsRemoved(ctx context.Context, to, name string) error
}

// MailerSubscription is the mailer's queue.
var MailerSubscription = events.Subscription{
	Queue: "usersvc.mailer",
	RoutingKeys: []string{string(user.EventPasswordResetRequested), string(user.EventVerificationRequested),
		string(user.EventEmailChangeRequested), string(user.EventSignupAttempted), string(user.EventFactorsRemoved)},
	MaxAttempts: 8,
	Backoff:     2 * time.Second,
	MaxBackoff:  2 * time.Minute,
}

// Mailer sends the mail of each event it is subscribed to once: the send
// runs inside ProcessOnce, so a redelivered event whose mail went out is
// acknowledged without a second mail, and a failed send leaves no mark and
// is retried. A token whose expiry passed before delivery is not mailed.
func Mailer(p Processed, sender Sender, now func() time.Time, log *slog.Logger) events.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	telemetry.MailDeliveries.WithLabelValues("sent")
	telemetry.MailDeliveries.WithLabelValues("failed")
	return func(ctx context.Context, m events.Message) error {
		e, err := user.ParseEvent(m.Body)
		if err != nil {
			return events.Permanent(err)
		}
		ml, err := mailOf(e, sender)
		if err != nil {
			return events.Permanent(err)
		}
		if !ml.expires.IsZero() && !now().Before(ml.expires) {
			log.WarnContext(ctx, ml.kind+" mail not sent: token already expired", "event.id", e.ID, "user.id", e.UserID)
			return nil
		}
		ran, err := p.ProcessOnce(ctx, "mailer", e.ID, func(ctx context.Context) error {
			err := ml.send(ctx)
			telemetry.MailDeliveries.WithLabelValues(map[bool]string{true: "sent", false: "failed"}[err == nil]).Inc()
			return err
		})
		if err != nil {
			return fmt.Errorf("mailer: event %s: %w", e.ID, err)
		}
		if ran {
			log.InfoContext(ctx, ml.kind+" mail sent", "event.id", e.ID, "user.id", e.UserID)
		}
		return nil
	}
}

// outgoing is the mail an event asks for.
type outgoing struct {
	kind    string // for logs: "reset", "verification", …
	expires time.Time
	send    func(context.Context) error
}

// mailOf returns the mail of e, or an error if e carries none it can send.
func mailOf(e user.Event, s Sender) (outgoing, error) {
	switch {
	case e.Type == user.EventPasswordResetRequested && e.Reset != nil && e.Reset.Token != "":
		r := e.Reset
		return outgoing{kind: "reset", expires: r.ExpiresAt, send: func(ctx context.Context) error {
			return s.SendPasswordReset(ctx, r.Email, r.Name, r.Token)
		}}, nil
	case e.Type == user.EventVerificationRequested && e.Verification != nil && e.Verification.Token != "":
		v := e.Verification
		return outgoing{kind: "verification", expires: v.ExpiresAt, send: func(ctx context.Context) error {
			return s.SendVerification(ctx, v.Email, v.Name, v.Token)
		}}, nil
	case e.Type == user.EventEmailChangeRequested && e.Notice != nil && e.Notice.NewEmail != "":
		n := e.Notice
		return outgoing{kind: "email change notice", send: func(ctx context.Context) error {
			return s.SendEmailChangeNotice(ctx, n.Email, n.Name, n.NewEmail)
		}}, nil
	case e.Type == user.EventSignupAttempted && e.Notice != nil:
		n := e.Notice
		return outgoing{kind: "sign-up attempt notice", send: func(ctx context.Context) error {
			return s.SendSignupAttempt(ctx, n.Email, n.Name)
		}}, nil
	case e.Type == user.EventFactorsRemoved && e.Notice != nil:
		n := e.Notice
		return outgoing{kind: "factors removed notice", send: func(ctx context.Context) error {
			return s.SendFactorsRemoved(ctx, n.Email, n.Name)
		}}, nil
	}
	return outgoing{}, fmt.Errorf("mailer: event %s (%s) carries no mail", e.ID, e.Type)
}

// outcome is "ok" or "failed", for the counters.
func outcome(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}
