// Package ratelimit limits how often a key (a client IP, an account) may do
// something, across every instance of the service (Redis) or within one
// process (Local), with a fallback from the first to the second when Redis
// is unreachable.
//
// # Semantics
//
// A Rule allows at most Limit requests per key in any sliding Window: a
// request is allowed when fewer than Limit requests of that key were
// allowed in the Window before it. A denied request reports how long until
// the oldest of those leaves the window (retryAfter), for Retry-After.
//
// Only allowed requests count. That is what keeps an account under attack
// from being locked out for good: an attacker hammering one account gets at
// most Limit attempts per Window however fast they send, and the moment the
// attack stops the owner can try again within one Window. No key is ever
// blocked longer than one Window after its last allowed request, and
// nothing is permanent; persistent lockout (and unlock by email) would be
// a different feature with a different abuse profile (locking out others).
// Per-account limits also cost the attacker nothing per IP, so pair them
// with per-IP limits.
//
// # Recommended rules
//
// The Default* rules below are the recommended defaults for the HTTP API:
// POST /user/token 20/min per IP (DefaultTokenPerIP) and 5/min per account
// email (DefaultTokenPerAccount); POST /user 10/min per IP
// (DefaultCreateUserPerIP); POST /user/password (reset request) 5/min per
// IP (DefaultPasswordPerIP) and 3 per 15 min per email
// (DefaultPasswordPerEmail), which also bounds the mail one address can be
// sent. Give each rule its own prefix (or a distinct first Key part): keys
// of two rules must never meet in one window.
package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Rule allows at most Limit requests per key in any sliding Window.
type Rule struct {
	Limit  int
	Window time.Duration
}

// Recommended rules; see the package doc.
var (
	DefaultTokenPerIP       = Rule{Limit: 20, Window: time.Minute}
	DefaultTokenPerAccount  = Rule{Limit: 5, Window: time.Minute}
	DefaultCreateUserPerIP  = Rule{Limit: 10, Window: time.Minute}
	DefaultPasswordPerIP    = Rule{Limit: 5, Window: time.Minute}
	DefaultPasswordPerEmail = Rule{Limit: 3, Window: 15 * time.Minute}
)

// Validate reports whether the rule can be enforced.
func (r Rule) Validate() error {
	if r.Limit <= 0 || r.Window <= 0 {
		return fmt.Errorf("ratelimit: rule needs a positive limit and window, got %d per %v", r.Limit, r.Window)
	}
	return nil
}

// mustValidate panics on a rule that cannot be enforced: the constructors
// have no error to return, and a zero rule is a wiring bug that must not
// silently allow (or deny) everything.
func (r Rule) mustValidate() {
	if err := r.Validate(); err != nil {
		panic(err)
	}
}

// Limiter decides whether a request of key may proceed.
type Limiter interface {
	// Allow reports whether the request is allowed; when it is not,
	// retryAfter (> 0) is how long until one would be. err is set only when
	// the limiter could not decide (its store is unreachable); ok is then
	// false and the caller chooses (see Fallback).
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// keyEscaper escapes the escape character and the separator, so Key is
// injective: Key("a:b", "c") != Key("a", "b:c").
var keyEscaper = strings.NewReplacer(`\`, `\\`, `:`, `\:`)

// Key joins parts with ":" after escaping ":" and "\" in each, so
// attacker-chosen parts (an email, a header) cannot make two different
// tuples collide. Example: Key("token", "email", email).
func Key(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		keyEscaper.WriteString(&b, p)
	}
	return b.String()
}

// Action is an anonymous action with a per-client budget. Every door to
// it — the JSON API route, a page form, the gRPC method — spends the same
// budget: the same limiter under the same key (ClientKey). An action is
// named by its JSON API route, which is also the key the API has always
// used, so budgets survive an upgrade.
type Action string

// The actions with a per-client budget.
const (
	SignIn             Action = "POST /user/token"
	SignUp             Action = "POST /user"
	ResetRequest       Action = "POST /user/password"
	VerificationResend Action = "POST /user/verification"
)

// ClientKey is the limiter key of action a by the client at addr.
func ClientKey(a Action, addr string) string { return "ip|" + string(a) + "|" + addr }
