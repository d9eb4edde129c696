package password

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
	"github.com/ccojocar/zxcvbn-go/adjacency"
	"github.com/ccojocar/zxcvbn-go/match"
	"github.com/ccojocar/zxcvbn-go/matching"
)

// Bounds for Policy.Validate.
const (
	// NIST SP 800-63B: passwords SHALL be at least 8 characters (revision
	// 4 raises this to 15 when the password is the only factor).
	nistMinLength = 8
	// NIST SP 800-63B: verifiers SHALL accept passwords of at least 64
	// characters.
	nistMinMaxLength = 64
	// upperMaxLength caps how much work a single Check may be asked to do
	// (UTF-8 validation and rune counting are linear). Argon2 hashes the
	// password once up front, so length does not change hashing cost.
	upperMaxLength = 4096
)

// zxcvbn cost bounds. Measured on zxcvbn-go v1.0.4 (amd64): PasswordStrength
// grows roughly with the square of the length, because every substring is
// looked up in every dictionary. The l33t matcher repeats that work for every
// combination of the substitutions present ("@"->a, "("/"{"/"["/"<"->c,
// "1"->i or l, ...), up to 4608 combinations for zxcvbn-go's table.
//
//	input (runes)                          all matchers   without l33t
//	64 random letters/digits/symbols       2-95 ms        ~1 ms
//	64 of "4@8({[<3&69!|1|7+0$5%2"          590 ms         1.2 ms
//	256 of "4@8({[<3&69!|1|7+0$5%2"         28 s           -
//	256 random letters/digits/symbols      108 ms         -
//
// So Check is an easy CPU DoS target, even with MaxLength at 256, unless
// both the length and the l33t work are bounded.
const (
	// scoreWindow: only the first 64 runes are scored. NIST requires
	// accepting at least 64 characters, and 64 runes of anything that is not
	// a repeated or common pattern score 4 anyway. Scoring only a prefix is
	// conservative: it can only see less entropy than the whole password has,
	// so it never accepts a password whose first 64 runes are weak. The whole
	// password is still hashed; nothing is truncated.
	scoreWindow = 64
	// maxLeetWork bounds (upper bound on l33t combinations) × runes². Above
	// it, the l33t matcher is skipped. That only happens for passwords with
	// many different substitution symbols: a real leetspeak word uses a few
	// ("P@ssw0rd" is 1 combination), while random symbol-heavy passwords use
	// many and are strong without l33t decoding. One unit costs about 0.3 µs,
	// so 1<<14 keeps the l33t pass under about 5 ms. It still runs on 64 runes
	// with up to 4 combinations and on 16 runes with up to 64.
	maxLeetWork = 1 << 14
)

// Policy decides which new passwords are acceptable. It is only for choosing
// or changing a password. Never apply it at login: a stricter policy would
// lock out users whose passwords were valid when they set them.
type Policy struct {
	MinLength int // runes, default 8
	MaxLength int // runes, default 256 (NIST: allow at least 64)
	MinScore  int // zxcvbn score 0..4 the password must reach, default 2
}

// DefaultPolicy returns the NIST SP 800-63B minimums (8 to 256 characters)
// and requires a zxcvbn score of at least 2.
//
// MinScore 2 was chosen by scoring real examples with zxcvbn-go. The port
// assumes 10^4 guesses/s, so score 2 means at least about 2*10^8 guesses (27.6
// bits). Every common or breached-style password tried scored 0:
// "password", "12345678", "qwertyuiop", "iloveyou1", "Password1",
// "P@ssw0rd", "Summer2024!", "Qwerty123!", "1qaz2wsx3edc", "Liverpool1". So
// even MinScore 1 blocks those. Score 1 (21 to 27 bits) still lets through
// two-word and word-concatenation phrases such as "correct horse",
// "kitchen window", "purplemonkeydishwasher" and "orangeSquirrel7", which
// combinator wordlist attacks try early. Score 3 would also reject memorable
// passphrases such as "sunflower seeds", "tangerine-rocket" and
// "mydoglikescheese". NIST SP 800-63B (appendix A) notes that burdensome rules
// push users towards predictable workarounds, and offline resistance is
// argon2id's job. The required
// good examples ("correct horse battery staple", "kV9#mQ2!xL",
// "Tr0ub4dor&3xyz", 12 random lowercase letters) all score 4.
func DefaultPolicy() Policy {
	return Policy{MinLength: 8, MaxLength: 256, MinScore: 2}
}

// Validate rejects policies weaker than NIST SP 800-63B requires, and ones
// that cannot be satisfied. The error names the offending field.
func (p Policy) Validate() error {
	switch {
	case p.MinLength < nistMinLength:
		return fmt.Errorf("password: Policy.MinLength must be at least %d (NIST SP 800-63B), got %d",
			nistMinLength, p.MinLength)
	case p.MaxLength < nistMinMaxLength:
		return fmt.Errorf("password: Policy.MaxLength must be at least %d (NIST SP 800-63B), got %d",
			nistMinMaxLength, p.MaxLength)
	case p.MaxLength > upperMaxLength:
		return fmt.Errorf("password: Policy.MaxLength must be at most %d, got %d", upperMaxLength, p.MaxLength)
	case p.MinLength > p.MaxLength:
		return fmt.Errorf("password: Policy.MinLength (%d) must not exceed Policy.MaxLength (%d)",
			p.MinLength, p.MaxLength)
	case p.MinScore < 0 || p.MinScore > 4:
		return fmt.Errorf("password: Policy.MinScore must be between 0 and 4, got %d", p.MinScore)
	}
	return nil
}

// PolicyError explains why Check rejected a password. Reason is written to be
// shown to the user. NIST SP 800-63B asks verifiers to tell users why a
// password was rejected. Error() prefixes it with "password ".
type PolicyError struct{ Reason string }

func (e *PolicyError) Error() string { return "password " + e.Reason }

// Check returns nil if password is acceptable for the account with the given
// email, or a *PolicyError. The checks run cheapest first, so a huge input is
// rejected before anything walks or scores it.
//
// Length is counted in Unicode characters (runes), as NIST SP 800-63B
// requires. Counting bytes would let three CJK characters meet an
// 8-character minimum and would cut non-ASCII passphrases off early. The password
// must be valid UTF-8 so that the count, and the bytes later hashed, are
// well-defined. There are deliberately no composition rules (see the package
// documentation). The email, its local part, and the words in the local part
// are passed to zxcvbn as user-specific words, because they are the first
// things a targeted attacker tries. A password equal to the email or its
// local part (ignoring case) is rejected outright.
//
// Check does not normalise Unicode (NFKC) and does not trim spaces: Hash
// receives the password exactly as Check saw it.
func (p Policy) Check(password, email string) error {
	// A string longer than MaxLength*UTFMax bytes has more than MaxLength
	// runes. Testing that first costs O(1), so an oversized request body is
	// never walked. (Written as a division so a huge MaxLength cannot overflow.)
	if len(password)/utf8.UTFMax > p.MaxLength {
		return &PolicyError{Reason: fmt.Sprintf("must be at most %d characters", p.MaxLength)}
	}
	if !utf8.ValidString(password) {
		return &PolicyError{Reason: "must be valid UTF-8 text"}
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return &PolicyError{Reason: fmt.Sprintf("must be at least %d characters", p.MinLength)}
	}
	if n > p.MaxLength {
		return &PolicyError{Reason: fmt.Sprintf("must be at most %d characters", p.MaxLength)}
	}

	var userInputs []string
	if email != "" {
		local := email
		if i := strings.LastIndexByte(email, '@'); i >= 0 {
			local = email[:i] // LastIndex: a quoted local part may itself contain '@'
		}
		if strings.EqualFold(password, email) {
			return &PolicyError{Reason: "must not be your email address"}
		}
		if strings.EqualFold(password, local) {
			return &PolicyError{Reason: "must not be the name part of your email address"}
		}
		userInputs = emailInputs(email, local)
	}

	if score(password, userInputs) < p.MinScore {
		return &PolicyError{Reason: "is too common or too easy to guess"}
	}
	return nil
}

// emailInputs returns the user-specific words zxcvbn should treat as
// trivially guessable: the email, its local part, and for a local part
// such as "jane.q.doe" also its words and their concatenation ("jane",
// "doe", "janeqdoe"), because "JaneDoe1" is as guessable as "jane.doe".
// Words shorter than 3 runes are dropped: they would match single letters in
// unrelated passwords. Splitting only happens for local parts within the
// RFC 5321 limit of 64 octets, so a huge email cannot grow the list.
func emailInputs(email, local string) []string {
	inputs := []string{email}
	if local == "" || local == email {
		return inputs
	}
	inputs = append(inputs, local)
	if len(local) > 64 {
		return inputs
	}
	words := strings.FieldsFunc(local, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) < 2 {
		return inputs
	}
	for _, w := range words {
		if utf8.RuneCountInString(w) >= 3 {
			inputs = append(inputs, w)
		}
	}
	return append(inputs, strings.Join(words, ""))
}

// score returns the zxcvbn score (0..4) of password's first scoreWindow runes.
// Work is bounded as explained at scoreWindow and maxLeetWork.
func score(password string, userInputs []string) int {
	window := password
	runes := 0
	for i := range password {
		if runes == scoreWindow {
			window = password[:i]
			break
		}
		runes++
	}
	var filters []func(match.Matcher) bool
	if leetCombinations(window)*runes*runes > maxLeetWork {
		filters = append(filters, matching.FilterL33tMatcher)
	}
	return zxcvbn.PasswordStrength(window, userInputs, filters...).Score
}

// leetCombinations is an upper bound on the number of de-l33ted variants
// zxcvbn-go tries for s. It multiplies, over each letter, how many of its
// substitutes occur in s, and over each substitute that occurs, how many
// letters it can stand for ("1" is i or l). It reads the library's own
// substitution table so the estimate follows the library.
func leetCombinations(s string) int {
	combinations := 1
	lettersPerSub := make(map[string]int)
	for _, subs := range adjacency.GraphMap["l33t"].Graph {
		present := 0
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				present++
				lettersPerSub[sub]++
			}
		}
		combinations *= max(present, 1)
	}
	for _, letters := range lettersPerSub {
		combinations *= letters
	}
	return combinations
}
