package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RevocationRoutingKey is the routing key under which the user service
// publishes a Revocation (JSON body) to its "user.events" topic exchange.
const RevocationRoutingKey = "token.revoked"

// Why a Revocation was published.
const (
	ReasonLogout          = "logout"           // a sign-out with the access token presented: jti
	ReasonSessionEnded    = "session_ended"    // a session ended (idle, refresh reuse): sid
	ReasonSessionsEnded   = "sessions_ended"   // "sign out everywhere": sub + sv_below
	ReasonPasswordChanged = "password_changed" // sub + sv_below
	ReasonDisabled        = "disabled"         // sub + sv_below
	ReasonDeleted         = "deleted"          // sub + issued_through
	ReasonRoleChanged     = "role_changed"     // sub + issued_through
	ReasonClientRevoked   = "client_revoked"   // a service account: sub + issued_through
)

// Revocation says which tokens the user service no longer honours. A token
// is revoked if any of the set rules matches it:
//
//   - TokenID: the token whose jti it is;
//   - SessionID: every token of that session (sid);
//   - Subject with SessionVersionBelow: the subject's tokens whose sv is lower;
//   - Subject with IssuedThrough: the subject's tokens issued (iat) at or
//     before that second.
//
// Every token a revocation covers has expired by Until, after which it may
// be forgotten. Applying one twice is harmless (delivery is at least once).
type Revocation struct {
	ID                  string    `json:"id"`
	Reason              string    `json:"reason"`
	At                  time.Time `json:"at"`
	Until               time.Time `json:"until"`
	TokenID             string    `json:"jti,omitempty"`
	SessionID           string    `json:"sid,omitempty"`
	Subject             string    `json:"sub,omitempty"`
	SessionVersionBelow int64     `json:"sv_below,omitempty"`
	IssuedThrough       time.Time `json:"issued_through,omitzero"`
}

// Validate reports a revocation that names nothing to revoke.
func (r Revocation) Validate() error {
	switch {
	case r.ID == "" || r.At.IsZero() || r.Until.IsZero():
		return errors.New("revocation: id, at and until are required")
	case r.TokenID == "" && r.SessionID == "" && r.Subject == "":
		return errors.New("revocation: names no token, session or subject")
	case r.Subject != "" && r.SessionVersionBelow == 0 && r.IssuedThrough.IsZero():
		return errors.New("revocation: a subject needs sv_below or issued_through")
	}
	return nil
}

// ParseRevocation decodes and validates a message body.
func ParseRevocation(body []byte) (Revocation, error) {
	var r Revocation
	if err := json.Unmarshal(body, &r); err != nil {
		return Revocation{}, fmt.Errorf("revocation: %w", err)
	}
	return r, r.Validate()
}

// subjectRule is the union of the revocations of one subject.
type subjectRule struct {
	svBelow       int64
	issuedThrough time.Time
	until         time.Time
}

// RevocationSet holds the revocations in force and answers Check from
// memory. The zero value is not usable; use NewRevocationSet. It is safe
// for concurrent use.
type RevocationSet struct {
	now func() time.Time

	mu      sync.RWMutex
	jti     map[string]time.Time
	sid     map[string]time.Time
	sub     map[string]subjectRule
	sweepAt int
}

// minSweep is the entry count below which expired entries stay.
const minSweep = 1024

// NewRevocationSet returns an empty set; now nil means time.Now.
func NewRevocationSet(now func() time.Time) *RevocationSet {
	if now == nil {
		now = time.Now
	}
	return &RevocationSet{now: now, jti: map[string]time.Time{}, sid: map[string]time.Time{},
		sub: map[string]subjectRule{}, sweepAt: minSweep}
}

// Apply adds r. One already past its Until is ignored.
func (s *RevocationSet) Apply(r Revocation) {
	now := s.now()
	if !r.Until.After(now) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.TokenID != "" {
		s.jti[r.TokenID] = later(s.jti[r.TokenID], r.Until)
	}
	if r.SessionID != "" {
		s.sid[r.SessionID] = later(s.sid[r.SessionID], r.Until)
	}
	if r.Subject != "" {
		cur := s.sub[r.Subject]
		cur.svBelow = max(cur.svBelow, r.SessionVersionBelow)
		cur.issuedThrough = later(cur.issuedThrough, r.IssuedThrough)
		cur.until = later(cur.until, r.Until)
		s.sub[r.Subject] = cur
	}
	if s.lenLocked() >= s.sweepAt {
		s.sweepLocked(now)
	}
}

// Check returns an error wrapping ErrRevoked if a revocation covers p.
func (s *RevocationSet) Check(p *Principal) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.jti[p.TokenID]; ok {
		return fmt.Errorf("%w: token", ErrRevoked)
	}
	if p.SessionID != "" {
		if _, ok := s.sid[p.SessionID]; ok {
			return fmt.Errorf("%w: session", ErrRevoked)
		}
	}
	if r, ok := s.sub[p.ID]; ok {
		if p.SessionVersion < r.svBelow || !p.IssuedAt.After(r.issuedThrough) {
			return fmt.Errorf("%w: every earlier token of the %s", ErrRevoked, p.Kind)
		}
	}
	return nil
}

// Len is how many keys the set holds, for metrics and tests.
func (s *RevocationSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lenLocked()
}

func (s *RevocationSet) lenLocked() int { return len(s.jti) + len(s.sid) + len(s.sub) }

// sweepLocked drops what expired, once the count doubled since the last
// sweep, so memory follows the revocations in force.
func (s *RevocationSet) sweepLocked(now time.Time) {
	for k, u := range s.jti {
		if !u.After(now) {
			delete(s.jti, k)
		}
	}
	for k, u := range s.sid {
		if !u.After(now) {
			delete(s.sid, k)
		}
	}
	for k, r := range s.sub {
		if !r.until.After(now) {
			delete(s.sub, k)
		}
	}
	s.sweepAt = max(minSweep, 2*s.lenLocked())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
