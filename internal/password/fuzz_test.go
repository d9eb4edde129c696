package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzVerify checks that Verify never panics and keeps its result contract
// for any stored string, as if a database row had been corrupted or written by
// an attacker. Seed corpus: testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	h := newTestHasher(f, testParams)
	f.Add("correct horse", mustHash(f, h, "correct horse"))
	f.Fuzz(func(t *testing.T, password, encoded string) {
		// Parameters within bounds are valid on purpose, even when they are
		// expensive (up to 4 GiB). Skip those here so that one fuzz input
		// cannot stall the run. Verify's behaviour on them is the same code
		// path as for cheap parameters.
		if p, _, _, err := decode(encoded); err == nil &&
			uint64(p.Memory)*uint64(p.Iterations) > 4096 {
			t.Skip("valid but expensive parameters")
		}
		ok, rehash, err := h.Verify(context.Background(), password, encoded)
		if err != nil {
			if ok || rehash {
				t.Fatalf("Verify() = %v, %v, %v: error with a positive result", ok, rehash, err)
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify() error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		if rehash && !ok {
			t.Fatalf("Verify() = false, true, nil: rehash signalled for a wrong password")
		}
		// Everything that parses must have the canonical PHC shape.
		if !strings.HasPrefix(encoded, "$argon2id$v=19$m=") {
			t.Fatalf("Verify accepted non-canonical hash %q", encoded)
		}
	})
}

// FuzzPolicyCheck checks that Check never panics, including inside
// zxcvbn-go on arbitrary Unicode, and that accepted passwords really satisfy
// the policy. Seed corpus: testdata/fuzz/FuzzPolicyCheck.
func FuzzPolicyCheck(f *testing.F) {
	p := DefaultPolicy()
	f.Fuzz(func(t *testing.T, password, email string) {
		err := p.Check(password, email)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("Check() = %#v, want *PolicyError with a reason", err)
			}
			return
		}
		if !utf8.ValidString(password) {
			t.Fatalf("Check accepted invalid UTF-8 %q", password)
		}
		if n := utf8.RuneCountInString(password); n < p.MinLength || n > p.MaxLength {
			t.Fatalf("Check accepted %d runes, policy is %d..%d", n, p.MinLength, p.MaxLength)
		}
		if email != "" && strings.EqualFold(password, email) {
			t.Fatalf("Check accepted the email %q as password", email)
		}
	})
}
