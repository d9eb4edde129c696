// Package worker holds the event consumers: the mailer, which sends
// password-reset mail, and the search indexer, which keeps the search index
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

// ResetSender delivers a reset token (mail.ResetMailer).
type ResetSender interface {
	SendPasswordReset(ctx context.Context, to, name, token string) error
}

// MailerSubscription is the mailer's queue.
var MailerSubscription = events.Subscription{
	Queue:       "usersvc.mailer",
	RoutingKeys: []string{string(user.EventPasswordResetRequested)},
	MaxAttempts: 8,
	Backoff:     2 * time.Second,
	MaxBackoff:  2 * time.Minute,
}

// Mailer sends the reset mail of each user.password_reset_requested event
// once: the send runs inside ProcessOnce, so a redelivered event whose mail
// went out is acknowledged without a second mail, and a failed send leaves
// no mark and is retried.
func Mailer(p Processed, sender ResetSender, now func() time.Time, log *slog.Logger) events.Handler {
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
		if e.Type != user.EventPasswordResetRequested || e.Reset == nil || e.Reset.Token == "" {
			return events.Permanent(fmt.Errorf("mailer: event %s (%s) carries no reset", e.ID, e.Type))
		}
		if !now().Before(e.Reset.ExpiresAt) {
			log.WarnContext(ctx, "reset mail not sent: token already expired", "event.id", e.ID, "user.id", e.UserID)
			return nil
		}
		ran, err := p.ProcessOnce(ctx, "mailer", e.ID, func(ctx context.Context) error {
			err := sender.SendPasswordReset(ctx, e.Reset.Email, e.Reset.Name, e.Reset.Token)
			telemetry.MailDeliveries.WithLabelValues(map[bool]string{true: "sent", false: "failed"}[err == nil]).Inc()
			return err
		})
		if err != nil {
			return fmt.Errorf("mailer: event %s: %w", e.ID, err)
		}
		if ran {
			log.InfoContext(ctx, "reset mail sent", "event.id", e.ID, "user.id", e.UserID)
		}
		return nil
	}
}

// outcome is "ok" or "failed", for the counters.
func outcome(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}
