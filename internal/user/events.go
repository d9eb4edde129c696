package user

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// EventType names a change; it is also the RabbitMQ routing key.
type EventType string

const (
	EventCreated                EventType = "user.created"
	EventUpdated                EventType = "user.updated"
	EventDeleted                EventType = "user.deleted"
	EventPasswordResetRequested EventType = "user.password_reset_requested"
	EventPasswordChanged        EventType = "user.password_changed"
	// EventVerificationRequested carries a verification token for the
	// address in Verification (at sign-up, a resend, or an email change).
	EventVerificationRequested EventType = "user.email_verification_requested"
	// EventEmailChangeRequested tells the current address (Notice) that a
	// change to Notice.NewEmail was asked for.
	EventEmailChangeRequested EventType = "user.email_change_requested"
	// EventSignupAttempted tells the owner of an address (Notice) that
	// someone tried to register it again, or to change another account's
	// address to it (enumeration-safe sign-up and email change).
	EventSignupAttempted EventType = "user.signup_attempted"
	// EventFactorsRemoved tells the owner (Notice) that someone else (an
	// admin) removed second factors of their account.
	EventFactorsRemoved EventType = "user.factors_removed"
)

// EventTypes lists every type, for consumers that bind to all of them.
var EventTypes = []EventType{EventCreated, EventUpdated, EventDeleted, EventPasswordResetRequested, EventPasswordChanged,
	EventVerificationRequested, EventEmailChangeRequested, EventSignupAttempted, EventFactorsRemoved}

// Event is a committed change, written to the outbox in the same
// transaction as the change itself and published from there, so an event
// exists exactly when its change does. Its JSON form is the message body.
type Event struct {
	ID         string    `json:"id"` // UUIDv7: unique, and ordered like the changes
	Type       EventType `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	UserID     string    `json:"user_id"`
	// User is the user after the change (created, updated); never a hash.
	User *EventUser `json:"user,omitempty"`
	// Changed lists the fields an update changed (updated).
	Changed []string `json:"changed,omitempty"`
	// Reset carries the raw reset token to the mailer
	// (password_reset_requested only). The outbox row holding it is deleted
	// once the broker confirms, so the mailer is then its only holder.
	Reset *EventReset `json:"reset,omitempty"`
	// Verification carries a raw verification token the same way
	// (email_verification_requested only): the address it proves, the
	// user's name, the token and its expiry.
	Verification *EventReset `json:"verification,omitempty"`
	// Notice is a mail that carries no token (email_change_requested,
	// signup_attempted, factors_removed).
	Notice *EventNotice `json:"notice,omitempty"`
}

// EventNotice is what the mailer needs for a notice: to whom, their name,
// and for an email change the address asked for.
type EventNotice struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	NewEmail string `json:"new_email,omitempty"`
}

// EventUser is the user inside an event: the snapshot, whose JSON names
// are the event's wire format.
type EventUser = Snapshot

// EventReset is what the mailer needs to send a reset link.
type EventReset struct {
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Body is the event's JSON message body.
func (e Event) Body() ([]byte, error) { return json.Marshal(e) }

// ParseEvent decodes a message body and checks the fields every consumer
// relies on.
func ParseEvent(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return Event{}, fmt.Errorf("user: parse event: %w", err)
	}
	if e.ID == "" || e.Type == "" || e.UserID == "" || e.OccurredAt.IsZero() {
		return Event{}, fmt.Errorf("user: parse event: id, type, user_id and occurred_at are required")
	}
	return e, nil
}

// EventUserOf is u as an event carries it.
func EventUserOf(u *User) *EventUser {
	snap := u.Snapshot()
	return &snap
}

// NewEvent stamps an event of user userID with a fresh ID and the time now.
func NewEvent(t EventType, userID string, now time.Time) (Event, error) {
	id, err := NewID()
	if err != nil {
		return Event{}, Internal("event id", err)
	}
	return Event{ID: id, Type: t, OccurredAt: now, UserID: userID}, nil
}

// AppendEvents writes events to the outbox inside the caller's transaction.
func AppendEvents(ctx context.Context, r Repo, evs ...Event) error {
	for _, e := range evs {
		if err := r.AppendEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
