package testenv

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Background runs run (a consumer, a relay: anything that works until its
// context ends) in a goroutine, on a context that ends when stop is called
// or the test ends. stop waits for run to return and fails the test unless
// it returns nil within wait; it runs once, however often it is called.
// done delivers run's result, for a caller that must notice an early return.
func Background(t testing.TB, what string, wait time.Duration, run func(context.Context) error) (stop func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-result:
				if err != nil {
					t.Errorf("%s returned %v, want nil", what, err)
				}
			case <-time.After(wait):
				t.Errorf("%s did not return within %v of its context ending", what, wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop, result
}

// Context is the test's context bounded to 30 seconds, so a call that
// hangs fails the test rather than the whole run's timeout.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
