package password

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const testEmail = "alice.smith@example.com"

// adversarialLeet uses every l33t substitution symbol zxcvbn-go knows. It maximises
// the l33t matcher's combinations; without the cost bound in score, 256 runes
// of it took 28 s to score.
const adversarialLeet = "4@8({[<3&69!|1|7+0$5%2"

func TestDefaultPolicy(t *testing.T) {
	want := Policy{MinLength: 8, MaxLength: 256, MinScore: 2}
	if got := DefaultPolicy(); got != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name      string
		p         Policy
		wantField string // "" means valid
	}{
		{"default", DefaultPolicy(), ""},
		{"NIST minimums", Policy{MinLength: 8, MaxLength: 64, MinScore: 0}, ""},
		{"single-factor rev4", Policy{MinLength: 15, MaxLength: 4096, MinScore: 4}, ""},
		{"zero value", Policy{}, "MinLength"},
		{"min below NIST", Policy{MinLength: 6, MaxLength: 256, MinScore: 2}, "MinLength"},
		{"max below NIST", Policy{MinLength: 8, MaxLength: 63, MinScore: 2}, "MaxLength"},
		{"max too large", Policy{MinLength: 8, MaxLength: 1 << 20, MinScore: 2}, "MaxLength"},
		{"min above max", Policy{MinLength: 100, MaxLength: 64, MinScore: 2}, "MinLength"},
		{"negative score", Policy{MinLength: 8, MaxLength: 256, MinScore: -1}, "MinScore"},
		{"score above 4", Policy{MinLength: 8, MaxLength: 256, MinScore: 5}, "MinScore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("Validate() = %v, want error naming %s", err, tt.wantField)
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct{ name, password, email string }{
		{"xkcd passphrase", "correct horse battery staple", testEmail},
		{"random symbols", "kV9#mQ2!xL", testEmail},
		{"leet with suffix", "Tr0ub4dor&3xyz", testEmail},
		{"random 12 lowercase", "xkqwzmvbfjtr", testEmail},
		{"64+ char passphrase", "the rain in spain falls mainly on the plain, said professor higgins", testEmail},
		{"exactly 256 runes", strings.Repeat("correct horse battery staple ", 9)[:256], testEmail},
		{"German", "Grüße aus München, ihr Lieben", testEmail},
		{"Chinese", "我的密码是一匹正确的马电池订书钉", testEmail},
		{"Cyrillic", "ключ-замок", testEmail},
		{"8 emoji (8 runes, 32 bytes)", "🐴🔋📎✅🎺🐙🌵🧲", testEmail},
		{"spaces allowed", "  sunflower   seeds  ", testEmail},
		{"no email given", "correct horse battery staple", ""},
		{"email without @", "correct horse battery staple", "alice"},
		{"contains email but much more", "purple " + testEmail + " kV9#mQ2!xL", testEmail},
		{"adversarial leet, 64 runes", strings.Repeat(adversarialLeet, 3)[:64], testEmail},
		{"adversarial leet, 256 runes", strings.Repeat(adversarialLeet, 12)[:256], testEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.Check(tt.password, tt.email); err != nil {
				t.Fatalf("Check(%q, %q) = %v, want nil", tt.password, tt.email, err)
			}
		})
	}
}

// TestCheckAcceptsRandomLowercase backs the "12 random lowercase letters
// pass" requirement with many samples. The seed is fixed, so the test is
// deterministic.
func TestCheckAcceptsRandomLowercase(t *testing.T) {
	p := DefaultPolicy()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, 12)
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		if err := p.Check(string(b), testEmail); err != nil {
			t.Errorf("Check(%q) = %v, want nil", b, err)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	p := DefaultPolicy()
	const (
		common   = "password is too common or too easy to guess"
		tooShort = "password must be at least 8 characters"
		tooLong  = "password must be at most 256 characters"
		badUTF8  = "password must be valid UTF-8 text"
		isEmail  = "password must not be your email address"
		isLocal  = "password must not be the name part of your email address"
	)
	tests := []struct{ name, password, email, want string }{
		{"password", "password", testEmail, common},
		{"digits", "12345678", testEmail, common},
		{"keyboard row", "qwertyuiop", testEmail, common},
		{"iloveyou1", "iloveyou1", testEmail, common},
		{"Password1", "Password1", testEmail, common},
		{"leet password", "P@ssw0rd", testEmail, common},
		{"season year", "Summer2024!", testEmail, common},
		{"keyboard walk", "1qaz2wsx3edc", testEmail, common},
		{"repeated char", "aaaaaaaaaaaa", testEmail, common},
		{"two words", "correct horse", testEmail, common},
		{"repeated word, 80 runes", strings.Repeat("password", 10), testEmail, common},
		{"email plus year", "alice.smith2024", testEmail, common},
		{"email plus digit", testEmail + "1", testEmail, common},
		{"email words joined", "AliceSmith!", testEmail, common},
		{"empty", "", testEmail, tooShort},
		{"7 ASCII", "kV9#mQ2", testEmail, tooShort},
		{"7 runes, 14 bytes", "ééééééé", testEmail, tooShort},
		{"257 runes", strings.Repeat("kV9#mQ2!xL", 26)[:257], testEmail, tooLong},
		{"257 two-byte runes", strings.Repeat("é", 257), testEmail, tooLong},
		{"1 MiB", strings.Repeat("x", 1<<20), testEmail, tooLong},
		{"1 MiB invalid UTF-8", strings.Repeat("\xff", 1<<20), testEmail, tooLong},
		{"invalid bytes", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", testEmail, badUTF8},
		{"truncated rune", "correct horse\xc3", testEmail, badUTF8},
		{"surrogate half", "correct horse \xed\xa0\x80", testEmail, badUTF8},
		{"email", testEmail, testEmail, isEmail},
		{"email other case", "ALICE.Smith@Example.COM", testEmail, isEmail},
		{"email local part", "alice.smith", testEmail, isLocal},
		{"email local part other case", "Alice.Smith", testEmail, isLocal},
		{"email without @", "alicesmith", "alicesmith", isEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.password, tt.email)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%.40q) = %v (%T), want *PolicyError", tt.password, err, err)
			}
			if err.Error() != tt.want {
				t.Fatalf("Check(%.40q) = %q, want %q", tt.password, err, tt.want)
			}
		})
	}
}

// TestCheckUsesEmailAsUserInput shows that the email feeds the guessability
// estimate: a password that is strong for one user is weak for the user whose
// address it is built from.
func TestCheckUsesEmailAsUserInput(t *testing.T) {
	p := DefaultPolicy()
	for _, pw := range []string{"zorblax.quintus!9", "ZorblaxQuintus"} {
		if err := p.Check(pw, "someone.else@example.com"); err != nil {
			t.Errorf("Check(%q, unrelated email) = %v, want nil", pw, err)
		}
		if err := p.Check(pw, "zorblax.quintus@example.com"); err == nil {
			t.Errorf("Check(%q, its own email) = nil, want rejection", pw)
		}
	}
}

func TestCheckCustomPolicy(t *testing.T) {
	lenient := Policy{MinLength: 8, MaxLength: 64, MinScore: 0}
	if err := lenient.Check("password", testEmail); err != nil {
		t.Errorf("MinScore 0: Check(password) = %v, want nil (no strength check)", err)
	}
	strict := Policy{MinLength: 12, MaxLength: 64, MinScore: 4}
	if err := strict.Check("kV9#mQ2!xL", testEmail); err == nil || err.Error() != "password must be at least 12 characters" {
		t.Errorf("MinLength 12: Check(10 runes) = %v", err)
	}
	if err := strict.Check("sunflower seeds", testEmail); err == nil {
		t.Errorf("MinScore 4: Check(sunflower seeds) = nil, want rejection")
	}
	if err := strict.Check(strings.Repeat("x", 65), testEmail); err == nil || err.Error() != "password must be at most 64 characters" {
		t.Errorf("MaxLength 64: Check(65 runes) = %v", err)
	}
}

func TestPolicyErrorMessage(t *testing.T) {
	err := error(&PolicyError{Reason: "must be at least 8 characters"})
	if got, want := err.Error(), "password must be at least 8 characters"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestLeetCombinations(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"correct horse", 1},
		{"P@ssw0rd", 1},
		{"p4@ss", 2},            // 'a' as "4" or "@"
		{"1", 2},                // "1" is 'i' or 'l'
		{"({[<", 4},             // four ways to write 'c'
		{adversarialLeet, 4608}, // 576 per-letter choices × 2^3 for the ambiguous "1", "|", "7"
	}
	for _, tt := range tests {
		if got := leetCombinations(tt.s); got != tt.want {
			t.Errorf("leetCombinations(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

// TestCheckCostIsBounded protects against CPU DoS from zxcvbn-go. Unbounded,
// the first input alone takes ~28 s and a 64-rune random symbol string up to
// ~100 ms. Bounded, each takes a few ms. The 2 s limit leaves room for -race
// and slow CI while still catching the loss of the bound.
func TestCheckCostIsBounded(t *testing.T) {
	p := DefaultPolicy()
	r := rand.New(rand.NewPCG(3, 4))
	printable := make([]byte, 256)
	for i := range printable {
		printable[i] = byte('!' + r.IntN(94))
	}
	inputs := []string{
		strings.Repeat(adversarialLeet, 12)[:256],
		strings.Repeat(adversarialLeet, 3)[:64],
		string(printable),
		strings.Repeat("a", 256),
		strings.Repeat("1|7!", 64),
		strings.Repeat("ß漢字🔑é", 51),
	}
	start := time.Now()
	for _, in := range inputs {
		_ = p.Check(in, testEmail)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Check on %d adversarial 64-256 rune inputs took %v; the zxcvbn cost bound is not working", len(inputs), d)
	}
}

func TestScoreWindow(t *testing.T) {
	// Strength past the first scoreWindow runes is not counted; a weak prefix
	// is enough to reject. This documents the trade-off made for bounded cost.
	weakPrefix := strings.Repeat("a", scoreWindow) + "kV9#mQ2!xL-Tr0ub4dor&3xyz"
	if DefaultPolicy().Check(weakPrefix, "") == nil {
		t.Errorf("Check(64×'a' + strong suffix) = nil, want rejection (only the first %d runes are scored)", scoreWindow)
	}
}
