package password

import (
	"context"
	"errors"
	"time"
)

// ErrBusy is returned by a Limited hasher that could not start a hash in
// time: its queue was full, or the wait for a free slot ran out.
var ErrBusy = errors.New("password: too many hashes in progress")

// Limit bounds the memory that password hashing takes. Each argon2id hash
// holds its whole memory cost (19 MiB by default) while it runs, so a burst
// of logins, unbounded, takes gigabytes: at most InFlight hashes run at
// once, up to Queue more wait up to Wait for a slot, and the rest fail at
// once with Busy (the caller answers 503 with Retry-After).
type Limit struct {
	InFlight int           // hashes computed at once; the CPU count is a good value
	Queue    int           // callers that may wait for a slot
	Wait     time.Duration // how long one waits before giving up
	Busy     error         // returned when shed; default ErrBusy
}

// Limited is a hasher with a Limit. Safe for concurrent use.
type Limited struct {
	h       hasher
	slots   chan struct{} // a token per running hash
	waiting chan struct{} // a token per queued caller
	wait    time.Duration
	busy    error
}

type hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error)
	Unmatchable() (string, error)
}

// NewLimited wraps h. InFlight and Queue below 1 are taken as 1 and 0.
func NewLimited(h hasher, l Limit) *Limited {
	l.InFlight = max(l.InFlight, 1)
	l.Queue = max(l.Queue, 0)
	if l.Busy == nil {
		l.Busy = ErrBusy
	}
	return &Limited{h: h, slots: make(chan struct{}, l.InFlight), waiting: make(chan struct{}, l.Queue),
		wait: l.Wait, busy: l.Busy}
}

// Hash hashes within the limit.
func (l *Limited) Hash(ctx context.Context, password string) (string, error) {
	release, err := l.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return l.h.Hash(ctx, password)
}

// Verify verifies within the limit.
func (l *Limited) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	release, err := l.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	return l.h.Verify(ctx, password, encoded)
}

// Unmatchable is the wrapped hasher's: it runs no hash, so it is not limited.
func (l *Limited) Unmatchable() (string, error) { return l.h.Unmatchable() }

// acquire takes a slot, waiting in the queue up to the wait (or until the
// caller gives up: a hash nobody will read is not worth a slot).
func (l *Limited) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-l.slots }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case l.waiting <- struct{}{}:
	default:
		return nil, l.busy // the queue is full: shed now, cheaply
	}
	defer func() { <-l.waiting }()
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, l.busy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
