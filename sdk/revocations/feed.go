// Package revocations keeps a verifier told of every token the user
// service revokes, so a logout or a disabled user reaches every service
// within a second rather than when the token expires.
//
// A Feed subscribes to the user service's revocation events on RabbitMQ
// through a queue of its own (server-named, exclusive, auto-deleted: it
// lives exactly as long as the connection, so a dead process leaves
// nothing behind), and applies them to an auth.RevocationSet. Events
// published while it was not connected went to no queue of its own, so
// after every (re)connect it first binds its queue and then catches up:
// it asks the user service for every revocation still in force (at most
// one access-token lifetime's worth), so a missed event is never a hole.
// Only then is it live.
//
// While it is not live (starting, or the broker unreachable) it behaves as
// configured: fail closed (every token is refused with auth.ErrUnavailable
// apart from those known revoked), or fail open for at most FailOpen after
// the stream was lost, counting each token so accepted (OnFailOpen) and
// logging the state change.
package revocations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// DefaultExchange is the user service's event exchange.
const DefaultExchange = "user.events"

// A CatchUp returns every revocation still in force whose At is not
// before since; userclient.Client implements it with the Revocations RPC.
type CatchUp interface {
	RevocationsSince(ctx context.Context, since time.Time) ([]auth.Revocation, error)
}

// State is where the feed stands.
type State int

const (
	// StateStarting: not yet connected and caught up once.
	StateStarting State = iota
	// StateLive: subscribed and caught up; Check answers from the set.
	StateLive
	// StateDown: the broker connection was lost; reconnecting.
	StateDown
)

func (s State) String() string {
	return [...]string{"starting", "live", "down"}[s]
}

// Config configures a Feed. URL and CatchUp are required.
type Config struct {
	URL      string // amqp://user:pass@host:5672/vhost
	Exchange string // default DefaultExchange
	CatchUp  CatchUp
	// Lookback limits how far back a catch-up reaches; 0 (the default)
	// asks for every revocation still in force, which the user service
	// bounds to its access-token lifetime. Set it only below that bound
	// if you know the service's token lifetime.
	Lookback time.Duration
	// FailOpen: 0 fails closed while not live; a positive value honours
	// tokens not known revoked for at most that long after the stream
	// was lost (or the feed started).
	FailOpen time.Duration
	// Heartbeat detects a silently dead broker connection; default 2s.
	Heartbeat time.Duration
	// Retry is the first reconnect delay, doubled up to 10× it; default 500ms.
	Retry time.Duration
	// OnState is called on every state change (a metric hook).
	OnState func(State)
	// OnFailOpen is called for each token accepted blind (a metric hook).
	OnFailOpen func()
	Logger     *slog.Logger     // nil = slog.Default()
	Now        func() time.Time // nil = time.Now
}

// Feed is a RevocationChecker fed from RabbitMQ. Run it, and give it to
// auth.Config.Revocations.
type Feed struct {
	cfg Config
	set *auth.RevocationSet

	mu    sync.Mutex
	state State
	since time.Time // when the current state began
	err   error     // why it is not live
}

// New checks cfg and returns a Feed in StateStarting.
func New(cfg Config) (*Feed, error) {
	if cfg.URL == "" || cfg.CatchUp == nil {
		return nil, errors.New("revocations: config: URL and CatchUp are required")
	}
	if cfg.FailOpen < 0 {
		return nil, errors.New("revocations: config: negative FailOpen")
	}
	if cfg.Exchange == "" {
		cfg.Exchange = DefaultExchange
	}
	if cfg.Lookback < 0 {
		return nil, errors.New("revocations: config: negative Lookback")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Feed{cfg: cfg, set: auth.NewRevocationSet(cfg.Now), state: StateStarting, since: cfg.Now(),
		err: errors.New("not connected yet")}, nil
}

// Check refuses a token the set knows revoked; while not live it fails
// closed, or open within the FailOpen bound.
func (f *Feed) Check(p *auth.Principal) error {
	if err := f.set.Check(p); err != nil {
		return err
	}
	f.mu.Lock()
	state, since, cause := f.state, f.since, f.err
	f.mu.Unlock()
	if state == StateLive {
		return nil
	}
	if f.cfg.FailOpen > 0 && f.cfg.Now().Sub(since) <= f.cfg.FailOpen {
		if f.cfg.OnFailOpen != nil {
			f.cfg.OnFailOpen()
		}
		return nil
	}
	return fmt.Errorf("%w: revocations not received (%s since %s): %v", auth.ErrUnavailable, state,
		since.UTC().Format(time.RFC3339), cause)
}

// State returns the feed's state and since when it holds.
func (f *Feed) State() (State, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.since
}

// Ready is nil while live, for /readyz.
func (f *Feed) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == StateLive {
		return nil
	}
	return fmt.Errorf("revocation feed %s: %v", f.state, f.err)
}

// Set is the revocations applied so far.
func (f *Feed) Set() *auth.RevocationSet { return f.set }

// setState records a change, logs it and calls the hook.
func (f *Feed) setState(s State, cause error) {
	f.mu.Lock()
	changed := f.state != s
	if changed {
		f.state, f.since = s, f.cfg.Now()
	}
	f.err = cause
	f.mu.Unlock()
	if !changed {
		return
	}
	if s == StateLive {
		f.cfg.Logger.Info("revocation feed live", "revocations", f.set.Len())
	} else {
		mode := "fail closed: tokens refused until it is back"
		if f.cfg.FailOpen > 0 {
			mode = fmt.Sprintf("fail open: tokens honoured for at most %v", f.cfg.FailOpen)
		}
		f.cfg.Logger.Warn("revocation feed "+s.String(), "error", cause, "mode", mode)
	}
	if f.cfg.OnState != nil {
		f.cfg.OnState(s)
	}
}
