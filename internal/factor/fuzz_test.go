package factor

import (
	"strings"
	"testing"
	"time"
)

// FuzzRecoveryCode: whatever a person types, NormalizeRecoveryCode gives a
// code of the alphabet and length or refuses it, a normalised code
// normalises to itself, and never a panic.
func FuzzRecoveryCode(f *testing.F) {
	for _, s := range []string{"7k3q-ab12-xyz0-mnpq", "7K3Q AB12 XYZ0 MNPQ", "", "-", "iloo-iloo-iloo-iloo", "ü", strings.Repeat("a", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := NormalizeRecoveryCode(s)
		if !ok {
			if _, ok := HashRecoveryCode("u", s); ok {
				t.Fatalf("HashRecoveryCode accepts %q, which does not normalise", s)
			}
			return
		}
		if len(n) != recoveryCodeLen || strings.Trim(n, crockfordAlphabet) != "" {
			t.Fatalf("NormalizeRecoveryCode(%q) = %q", s, n)
		}
		if again, ok := NormalizeRecoveryCode(n); !ok || again != n {
			t.Fatalf("normalising %q again gives %q, %v", n, again, ok)
		}
	})
}

// FuzzVerifyTOTP: no typed code panics the check or passes unless it is one
// of the three codes of the window.
func FuzzVerifyTOTP(f *testing.F) {
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	valid := map[string]bool{}
	for off := -1; off <= 1; off++ {
		c, _ := TOTPCode(secret, now.Add(TOTPPeriod*time.Duration(off)))
		valid[c] = true
		f.Add(c)
	}
	for _, s := range []string{"", "000000", "12 34 56", "-12345", "+12345", "1e5000", "١٢٣٤٥٦"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, ok, err := VerifyTOTP(secret, s, now, 0)
		if err != nil {
			t.Fatalf("VerifyTOTP(%q): %v", s, err)
		}
		if ok && !valid[strings.ReplaceAll(s, " ", "")] {
			t.Fatalf("VerifyTOTP accepted %q", s)
		}
	})
}
