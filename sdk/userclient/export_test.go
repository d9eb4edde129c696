package userclient

import "time"

// SetClock replaces the account's clock, for renewal tests.
func (s *ServiceAccount) SetClock(now func() time.Time) { s.now = now }

// Renewals counts the tokens fetched.
func (s *ServiceAccount) Renewals() int { s.mu.Lock(); defer s.mu.Unlock(); return s.renewals }
