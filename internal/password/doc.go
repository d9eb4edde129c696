// Package password stores and checks user passwords.
//
// Storage follows the OWASP Password Storage Cheat Sheet: argon2id (the
// RFC 9106 variant that resists both GPU cracking and side-channel attacks)
// with a random per-password salt, encoded as a PHC string so that the cost
// parameters travel with each hash and can be raised later without a
// migration: [Hasher.Verify] reports when a stored hash is below the current
// cost, so the caller can rehash after a successful login.
//
// Choosing passwords follows NIST SP 800-63B (section 3.1.1.2 in revision 4,
// 5.1.1.2 in revision 3): a minimum length, a generous maximum so that
// passphrases and password managers work, all Unicode characters allowed, no
// composition rules ("must contain a digit"), and a check against common or
// easily guessed values. Composition rules are left out on purpose: they push
// users towards predictable patterns such as "Password1!" and add little
// strength. [Policy.Check] uses the zxcvbn estimator to do the "common or
// guessable" check.
package password
