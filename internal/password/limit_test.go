package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// slowHasher takes d per call (in synctest's fake time) and records the
// most calls it saw at once.
type slowHasher struct {
	d         time.Duration
	now, most atomic.Int32
	calls     atomic.Int32
}

func (s *slowHasher) enter() {
	s.calls.Add(1)
	n := s.now.Add(1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(s.d)
	s.now.Add(-1)
}

func (s *slowHasher) Hash(context.Context, string) (string, error) { s.enter(); return "h", nil }
func (s *slowHasher) Unmatchable() (string, error)                 { return "u", nil }
func (s *slowHasher) Verify(context.Context, string, string) (bool, bool, error) {
	s.enter()
	return true, false, nil
}

// A burst far above the limit: never more than InFlight hashes at once,
// the queue is served in time, and everyone else is shed with Busy at once
// (not after waiting).
func TestLimitedBoundsInFlightAndSheds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		busy := errors.New("busy")
		inner := &slowHasher{d: 100 * time.Millisecond}
		l := NewLimited(inner, Limit{InFlight: 2, Queue: 4, Wait: time.Second, Busy: busy})
		var ok, shed atomic.Int32
		var wg sync.WaitGroup
		start := time.Now()
		var shedLate atomic.Bool
		for range 200 {
			wg.Go(func() {
				_, _, err := l.Verify(context.Background(), "pw", "enc")
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, busy):
					shed.Add(1)
					if time.Since(start) > 0 {
						shedLate.Store(true)
					}
				default:
					t.Errorf("Verify: %v", err)
				}
			})
		}
		wg.Wait()
		if m := inner.most.Load(); m != 2 {
			t.Errorf("at most %d hashes ran at once, want 2", m)
		}
		// 2 run at once, 4 wait (100 ms and 200 ms, within the 1 s wait).
		if ok.Load() != 6 || shed.Load() != 194 {
			t.Errorf("%d verified, %d shed; want 6 and 194", ok.Load(), shed.Load())
		}
		if shedLate.Load() {
			t.Error("a caller beyond the queue waited before being shed")
		}
	})
}

// A queued caller whose wait runs out is shed; the slot it waited for
// still serves later callers.
func TestLimitedQueueDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &slowHasher{d: time.Second}
		l := NewLimited(inner, Limit{InFlight: 1, Queue: 10, Wait: 300 * time.Millisecond})
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := l.Hash(context.Background(), "a"); err != nil {
				t.Errorf("first Hash: %v", err)
			}
		})
		synctest.Wait() // the first holds the only slot
		start := time.Now()
		if _, err := l.Hash(context.Background(), "b"); !errors.Is(err, ErrBusy) {
			t.Errorf("queued Hash = %v, want ErrBusy", err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Errorf("shed after %v, want the 300ms wait", d)
		}
		wg.Wait()
		if _, err := l.Hash(context.Background(), "c"); err != nil {
			t.Errorf("Hash after the slot freed: %v", err)
		}
		if n := inner.calls.Load(); n != 2 {
			t.Errorf("%d hashes ran, want 2 (the shed one never ran)", n)
		}
	})
}
