// Package factor holds the second factors' building blocks, with no server
// dependency: TOTP enrolment and verification (RFC 6238, on
// github.com/pquerna/otp), recovery codes, and the records and storage port
// of factors, recovery codes and MFA tickets, which the SQL store
// implements. The rules (who may enrol, when a code counts) are the
// domain's; this package only computes and compares.
//
// Secrets are sealed for storage by package seal; this package never sees
// a key.
package factor

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters every authenticator app understands: HMAC-SHA1, six
// digits, 30-second steps (RFC 6238's defaults; Google Authenticator and
// several others ignore any other algorithm or period in the URI and would
// show wrong codes). The secret is 160 bits, RFC 4226's recommendation.
const (
	TOTPPeriod = 30 * time.Second
	TOTPDigits = 6
	// TOTPSkew is how many steps either side of now a code may come from:
	// one, for a phone's clock a little off and the seconds it takes to
	// type the code.
	TOTPSkew        = 1
	totpSecretBytes = 20
	// qrSize is the QR code's width and height in pixels: readable by a
	// phone camera from a laptop screen.
	qrSize = 256
)

var totpOpts = totp.ValidateOpts{Period: uint(TOTPPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is what a person needs to add the factor to an app: the
// secret (base32, to type in), the otpauth:// URI (Key Uri Format) and the
// same URI as a QR code PNG.
type TOTPEnrolment struct {
	Secret string
	URI    string
	QRPNG  []byte
}

// NewTOTP makes a new random secret for account (the person's email) at
// issuer (the service's name as apps show it). Neither may contain ':',
// which separates them in the URI's label.
func NewTOTP(issuer, account string) (TOTPEnrolment, error) {
	if issuer == "" || account == "" || strings.Contains(issuer, ":") || strings.Contains(account, ":") {
		return TOTPEnrolment{}, fmt.Errorf("factor: totp issuer %q and account %q must be non-empty and without ':'", issuer, account)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: totpOpts.Period,
		SecretSize: totpSecretBytes, Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("factor: generate totp secret: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("factor: totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("factor: totp qr png: %w", err)
	}
	return TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QRPNG: buf.Bytes()}, nil
}

// TOTPStep is the RFC 6238 time step t falls in: the counter of its code.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(totpOpts.Period) }

// TOTPCode is the code of secret at t, as an app would show it; for tests
// and tools (a person's app computes it, not the service).
func TOTPCode(secret string, t time.Time) (string, error) {
	code, err := totp.GenerateCodeCustom(secret, t, totpOpts)
	if err != nil {
		return "", fmt.Errorf("factor: totp code: %w", err)
	}
	return code, nil
}

// ErrTOTPSecret is a stored secret that is not base32: a bug or a damaged
// row, never the person's mistake.
var ErrTOTPSecret = errors.New("factor: totp secret is not base32")

// VerifyTOTP checks code against secret at now with TOTPSkew steps either
// side, accepting only a step later than after, the last step accepted for
// this factor (0 = none yet). It returns the step that matched, for the
// caller to store as the new after: so a code is accepted once, and an
// older code seen later (an eavesdropped one) is refused too. Spaces in the
// code are ignored ("123 456" as some apps show it); anything but six
// digits is refused before any HMAC is computed.
func VerifyTOTP(secret, code string, now time.Time, after int64) (step int64, ok bool, err error) {
	code = strings.ReplaceAll(code, " ", "")
	if !sixDigits(code) {
		return 0, false, nil
	}
	cur := TOTPStep(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if s <= after || s < 0 {
			continue
		}
		// hotp compares in constant time; each step is checked, so the
		// time taken does not say which step (if any) matched.
		match, err := hotp.ValidateCustom(code, uint64(s), secret, hotp.ValidateOpts{Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
		if err != nil {
			return 0, false, fmt.Errorf("%w: %w", ErrTOTPSecret, err)
		}
		if match && !ok {
			step, ok = s, true
		}
	}
	return step, ok, nil
}

func sixDigits(s string) bool {
	if len(s) != TOTPDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
