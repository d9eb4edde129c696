package user

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// Email addresses are compared in one canonical form, so an address that
// looks like a registered one is either that account or refused — never a
// second account a victim cannot tell apart:
//
//   - the local part through the PRECIS UsernameCaseMapped profile (RFC
//     8265): full-width forms folded to their normal width (ｃ → c), case
//     mapped to lower case, NFC (e + U+0301 → é), and invisible or
//     non-identifier characters (zero-width space and joiner, soft hyphen,
//     U+FFFD, spaces, controls) refused;
//   - its letters must be of one script, or one of the combinations a
//     language needs (UTS #39 "highly restrictive": Latin with Han and
//     kana, with Han and Bopomofo, or with Han and Hangul), so a Cyrillic
//     а among Latin letters is refused;
//   - the domain through UTS #46 (IDNA) lookup mapping, which folds
//     full-width and ideographic full stops to ".", lower-cases and
//     validates the labels; it is stored in its Unicode form, so the
//     punycode and the Unicode spelling of one domain are one address.
//
// What this does not catch: an address entirely in another script that
// looks Latin (a whole-script confusable such as Cyrillic "аре"), which
// needs the UTS #39 confusables data.

// domainProfile maps and validates the domain (UTS #46, non-transitional).
var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true),
	idna.VerifyDNSLength(true), idna.Transitional(false))

// ParseEmail returns the canonical form of an address, or a problem ("" if
// none) to show the client.
func ParseEmail(raw string) (email, problem string) {
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return "", "is required"
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return "", "must be valid UTF-8"
	case len(s) > 4*MaxEmailLength:
		// Bound the normalisation work; the real limit is checked below.
		return "", "must be at most 254 characters"
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 {
		return "", "must be a valid email address"
	}
	local, domain := s[:at], s[at+1:]
	if strings.IndexFunc(local, invisible) >= 0 {
		return "", "must not contain invisible characters"
	}
	l, err := precis.UsernameCaseMapped.String(local)
	if err != nil {
		return "", "must be a valid email address"
	}
	if !oneScript(l) {
		return "", "must not mix scripts (such as Latin and Cyrillic letters) before the @"
	}
	ascii, err := domainProfile.ToASCII(domain)
	if err != nil || !strings.Contains(ascii, ".") {
		return "", "must be a valid email address"
	}
	d, err := domainProfile.ToUnicode(ascii)
	if err != nil {
		return "", "must be a valid email address"
	}
	email = l + "@" + d
	if len(email) > MaxEmailLength {
		return "", "must be at most 254 characters"
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", "must be a valid email address"
	}
	return email, ""
}

// invisible reports characters that render as nothing: format characters
// (zero-width space and joiners, soft hyphen, bidi controls), other
// default-ignorable code points and variation selectors.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// scriptSets are the script combinations UTS #39 "highly restrictive"
// allows in one identifier besides a single script.
var scriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// oneScript reports whether the letters of s are of one script or of one
// allowed combination. Common and Inherited characters (digits,
// punctuation, combining marks) belong to every script.
func oneScript(s string) bool {
	var scripts []string
	for _, r := range s {
		name := scriptOf(r)
		if name == "" || name == "Common" || name == "Inherited" {
			continue
		}
		found := false
		for _, n := range scripts {
			found = found || n == name
		}
		if !found {
			scripts = append(scripts, name)
		}
	}
	if len(scripts) <= 1 {
		return true
	}
	for _, set := range scriptSets {
		if subset(scripts, set) {
			return true
		}
	}
	return false
}

// commonScripts are tried first: nearly every address is in one of them.
var commonScripts = []string{"Latin", "Common", "Inherited", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul"}

func scriptOf(r rune) string {
	for _, name := range commonScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

func subset(a, b []string) bool {
	for _, x := range a {
		in := false
		for _, y := range b {
			in = in || x == y
		}
		if !in {
			return false
		}
	}
	return true
}
