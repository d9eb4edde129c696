package mail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// VerifyPath is the path of the email-verification page, relative to
// PublicURL.
const VerifyPath = "/verify-email"

// VerifyLink returns the verification link for token,
// {PublicURL}/verify-email?token=TOKEN; ResetToken reads the token back
// from a mail.
func (r ResetMailer) VerifyLink(token string) string {
	return strings.TrimRight(r.PublicURL, "/") + VerifyPath + "?token=" + url.QueryEscape(token)
}

// SendVerification mails the link that proves the recipient receives mail
// at to: after a sign-up, a resend, or a request to change an account's
// address to this one.
func (r ResetMailer) SendVerification(ctx context.Context, to, name, token string) error {
	if token == "" {
		return errors.New("mail: email verification: empty token")
	}
	return r.send(ctx, "email verification", to, name, "Confirm your email address", func(name string) string {
		var b strings.Builder
		greet(&b, name)
		b.WriteString("please confirm that this is your email address by opening this link:\n\n")
		b.WriteString(r.VerifyLink(token))
		b.WriteString("\n\n")
		if r.VerifyTTL > 0 {
			fmt.Fprintf(&b, "The link is valid for %s.\n", humanDuration(r.VerifyTTL))
		}
		b.WriteString("If you did not sign up or ask to use this address, you can ignore this mail.\n")
		return b.String()
	})
}

// SendEmailChangeNotice tells the current address of an account that a
// change to newEmail was asked for, so its owner learns of a takeover
// attempt while the old address is still the login.
func (r ResetMailer) SendEmailChangeNotice(ctx context.Context, to, name, newEmail string) error {
	return r.send(ctx, "email change notice", to, name, "Your email address is being changed", func(name string) string {
		var b strings.Builder
		greet(&b, name)
		fmt.Fprintf(&b, "someone asked to change the email address of your account to %s.\n", cleanName(newEmail))
		b.WriteString("The change takes effect only once that address is confirmed; until then\n")
		b.WriteString("you keep signing in with this one.\n\n")
		b.WriteString("If this was not you, change your password now: someone may know it.\n")
		return b.String()
	})
}

// SendSignupAttempt tells the owner of an address that someone tried to
// create an account with it, or to move another account to it
// (enumeration-safe sign-up and email change answer the same to that
// someone as for a free address, so the owner is the one told).
func (r ResetMailer) SendSignupAttempt(ctx context.Context, to, name string) error {
	return r.send(ctx, "sign-up attempt notice", to, name, "Someone tried to create an account with your address", func(name string) string {
		var b strings.Builder
		greet(&b, name)
		b.WriteString("someone tried to create an account with your address, or to change another\n")
		b.WriteString("account's address to it. Your address already has an account, and nothing was changed.\n\n")
		b.WriteString("If it was you, sign in instead, or ask for a password reset if you forgot it.\n")
		b.WriteString("If it was not you, you can ignore this mail.\n")
		return b.String()
	})
}

// SendFactorsRemoved tells the owner of an account that someone else (an
// administrator) removed second factors from it: usually what they asked
// for after losing a device, and if not, the first sign of a takeover.
func (r ResetMailer) SendFactorsRemoved(ctx context.Context, to, name string) error {
	return r.send(ctx, "second factors removed notice", to, name, "Your second factors were removed by an administrator", func(name string) string {
		var b strings.Builder
		greet(&b, name)
		b.WriteString("an administrator removed second factors (an authenticator app, a passkey,\n")
		b.WriteString("or with the last of them your recovery codes) from your account.\n")
		b.WriteString("Until you enrol a factor again, your password alone signs you in.\n\n")
		b.WriteString("If you did not ask for this, change your password and contact your administrator.\n")
		return b.String()
	})
}
