package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds and fails the test when it does not
// within the given time. It is the one way the tests wait for something a
// real server does asynchronously (a delivery, a registration, a cache
// fill); waits on our own code's timers use testing/synctest instead.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
