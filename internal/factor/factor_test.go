package factor

import (
	"bytes"
	"errors"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// now is in the middle of a 30-second step.
var now = time.Date(2026, 12, 8, 1, 0, 15, 0, time.UTC)

func newTOTP(t *testing.T) TOTPEnrolment {
	t.Helper()
	e, err := NewTOTP("usersvc", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewTOTP(t *testing.T) {
	e := newTOTP(t)
	if len(e.Secret) != 32 { // 20 bytes of base32, unpadded
		t.Errorf("secret %q: want 32 base32 characters", e.Secret)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/usersvc:alice@example.com" {
		t.Fatalf("URI %q (%v)", e.URI, err)
	}
	q := u.Query()
	if q.Get("secret") != e.Secret || q.Get("issuer") != "usersvc" || q.Get("digits") != "6" ||
		q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Errorf("URI parameters %v", q)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil || key.Secret() != e.Secret || key.AccountName() != "alice@example.com" {
		t.Errorf("the URI does not read back: %v %v", key, err)
	}
	img, err := png.Decode(bytes.NewReader(e.QRPNG))
	if err != nil || img.Bounds().Dx() != qrSize {
		t.Errorf("QR PNG: %v, %v", img, err)
	}
	if other := newTOTP(t); other.Secret == e.Secret {
		t.Error("two enrolments got the same secret")
	}
	for _, bad := range [][2]string{{"", "a"}, {"a", ""}, {"us:er", "a"}, {"a", "b:c"}} {
		if _, err := NewTOTP(bad[0], bad[1]); err == nil {
			t.Errorf("NewTOTP(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// TestVerifyTOTPSkew: the codes of the steps before, at and after now are
// accepted, each returning its own step; two steps away is refused.
func TestVerifyTOTPSkew(t *testing.T) {
	secret := newTOTP(t).Secret
	for off := -2; off <= 2; off++ {
		at := now.Add(time.Duration(off) * TOTPPeriod)
		step, ok, err := VerifyTOTP(secret, code(t, secret, at), now, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := off >= -1 && off <= 1
		if ok != want || (ok && step != TOTPStep(at)) {
			t.Errorf("code of step %+d: ok=%v step=%d, want ok=%v step=%d", off, ok, step, want, TOTPStep(at))
		}
	}
}

// TestVerifyTOTPReplay: once a step is accepted (after = its step), its code
// and every earlier one is refused; a later step's code still works.
func TestVerifyTOTPReplay(t *testing.T) {
	secret := newTOTP(t).Secret
	c := code(t, secret, now)
	step, ok, _ := VerifyTOTP(secret, c, now, 0)
	if !ok {
		t.Fatal("fresh code refused")
	}
	if _, ok, _ := VerifyTOTP(secret, c, now, step); ok {
		t.Error("replayed code accepted")
	}
	if _, ok, _ := VerifyTOTP(secret, code(t, secret, now.Add(-TOTPPeriod)), now, step); ok {
		t.Error("an earlier step's code accepted after a later one")
	}
	next := now.Add(TOTPPeriod)
	if s, ok, _ := VerifyTOTP(secret, code(t, secret, next), next, step); !ok || s != step+1 {
		t.Errorf("next step's code: %v %d", ok, s)
	}
}

func TestVerifyTOTPInput(t *testing.T) {
	secret := newTOTP(t).Secret
	c := code(t, secret, now)
	if _, ok, _ := VerifyTOTP(secret, c[:3]+" "+c[3:], now, 0); !ok {
		t.Error("code with a space refused")
	}
	wrong := []byte(c)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	for _, bad := range []string{"", string(wrong), c + "0", c[:5], "12345a", "１２３４５６", " "} {
		if _, ok, err := VerifyTOTP(secret, bad, now, 0); ok || err != nil {
			t.Errorf("VerifyTOTP(%q) = %v, %v", bad, ok, err)
		}
	}
	if _, _, err := VerifyTOTP("not base32!", "123456", now, 0); !errors.Is(err, ErrTOTPSecret) {
		t.Errorf("bad secret: %v, want ErrTOTPSecret", err)
	}
}

// TestTOTPRFC6238Vector: the SHA-1 test vector of RFC 6238, appendix B
// (secret "12345678901234567890", T = 59 s, code 94287082 in 8 digits, so
// 287082 in six), pins the parameters to the standard's.
func TestTOTPRFC6238Vector(t *testing.T) {
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // base32 of "12345678901234567890"
	at := time.Unix(59, 0)
	if c := code(t, secret, at); c != "287082" {
		t.Fatalf("code at T=59: %s, want 287082", c)
	}
	if step, ok, _ := VerifyTOTP(secret, "287082", at, 0); !ok || step != 1 {
		t.Errorf("VerifyTOTP of the vector: %v step %d", ok, step)
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes()
	if err != nil || len(codes) != RecoveryCodeCount {
		t.Fatalf("NewRecoveryCodes = %d codes, %v", len(codes), err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || strings.Count(c, "-") != 3 || seen[c] {
			t.Errorf("code %q: want 4 groups of 4, all distinct", c)
		}
		seen[c] = true
		n, ok := NormalizeRecoveryCode(c)
		if !ok || len(n) != recoveryCodeLen {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, %v", c, n, ok)
		}
	}
	h, ok := HashRecoveryCode("u1", codes[0])
	if !ok || len(h) != 64 {
		t.Fatalf("HashRecoveryCode = %q, %v", h, ok)
	}
	// Typed back in another shape, the code hashes the same.
	typed := strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))
	typed = strings.NewReplacer("1", "L", "0", "O").Replace(typed)
	if h2, ok := HashRecoveryCode("u1", typed); !ok || h2 != h {
		t.Errorf("%q typed as %q hashes differently", codes[0], typed)
	}
	if h3, _ := HashRecoveryCode("u2", codes[0]); h3 == h {
		t.Error("the same code hashes alike for two users")
	}
	for _, bad := range []string{"", "abcd", codes[0] + "a", "uuuu-uuuu-uuuu-uuuu", "abcd-efgh-jkmn-pqr!", strings.Repeat("-", 100) + codes[0]} {
		if _, ok := HashRecoveryCode("u1", bad); ok {
			t.Errorf("HashRecoveryCode(%q) accepted", bad)
		}
	}
}
