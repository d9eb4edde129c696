package password

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkHashDefault measures the per-registration (and per-rehash) cost
// with production parameters. OWASP suggests tuning so that this stays within
// the login latency budget.
func BenchmarkHashDefault(b *testing.B) {
	h := newTestHasher(b, DefaultParams())
	for b.Loop() {
		if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDefault measures the per-login cost with production
// parameters.
func BenchmarkVerifyDefault(b *testing.B) {
	h := newTestHasher(b, DefaultParams())
	enc := mustHash(b, h, "correct horse battery staple")
	for b.Loop() {
		if ok, _, err := h.Verify(context.Background(), "correct horse battery staple", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkPolicyCheck covers typical input and the worst cases that the
// zxcvbn cost bounds exist for.
func BenchmarkPolicyCheck(b *testing.B) {
	p := DefaultPolicy()
	for _, bc := range []struct{ name, password string }{
		{"common", "Password1"},
		{"passphrase", "correct horse battery staple"},
		{"random_symbols_64", "xK9#qL2$mP!v7&Rt^4zW*8nB(3yH)6cJ_5fD+1gS=0kA-2eU[9iO]7pQ{4wE}6rT"},
		{"adversarial_leet_256", strings.Repeat(adversarialLeet, 12)[:256]},
		{"unicode_256", string([]rune(strings.Repeat("ß漢字🔑é", 52))[:256])},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_ = p.Check(bc.password, testEmail)
			}
		})
	}
}
