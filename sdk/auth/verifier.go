package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A RevocationChecker tells whether the user service has revoked a token
// since it was issued. Check returns nil, an error wrapping ErrRevoked, or
// one wrapping ErrUnavailable when it cannot tell (see package
// sdk/revocations for the one fed from RabbitMQ).
type RevocationChecker interface {
	Check(p *Principal) error
}

// Config configures a Verifier. Keys, Issuer and Audience are required and
// must match the user service's jwt_issuer and jwt_audience settings.
type Config struct {
	Keys     KeySource
	Issuer   string
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat; default 10s.
	Leeway time.Duration
	// RefetchFloor is the least time between two JWKS fetches caused by
	// unknown kids; default 30s. A key rotation is seen within it; a flood
	// of forged kids costs the user service one request per floor.
	RefetchFloor time.Duration
	// KeyMaxAge is how long a fetched JWKS is trusted before a token
	// signed with one of its keys makes the verifier fetch it again (at
	// most once per RefetchFloor; a failed fetch keeps the old keys), so a
	// key the service stopped publishing stops verifying; default 1h.
	KeyMaxAge time.Duration
	// Revocations, when set, is asked about every token that verifies.
	Revocations RevocationChecker
	// CacheSize bounds how many verified tokens are remembered so a token
	// presented again skips the signature check; default 10000, <0 none.
	CacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks access tokens locally. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	keys  *keyCache
	cache *verifiedCache
}

// NewVerifier checks cfg and returns a Verifier. It fetches no keys: the
// first token does (or call Refresh to fail fast at start).
func NewVerifier(cfg Config) (*Verifier, error) {
	switch {
	case cfg.Keys == nil:
		return nil, errors.New("auth: config: no key source")
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("auth: config: issuer and audience are required")
	case cfg.Leeway < 0 || cfg.RefetchFloor < 0 || cfg.KeyMaxAge < 0:
		return nil, errors.New("auth: config: negative leeway, refetch floor or key max age")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 10 * time.Second
	}
	if cfg.RefetchFloor == 0 {
		cfg.RefetchFloor = 30 * time.Second
	}
	if cfg.KeyMaxAge == 0 {
		cfg.KeyMaxAge = time.Hour
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{
		cfg:   cfg,
		keys:  &keyCache{src: cfg.Keys, floor: cfg.RefetchFloor, maxAge: cfg.KeyMaxAge, now: cfg.Now},
		cache: newVerifiedCache(max(cfg.CacheSize, 0)),
	}, nil
}

// Refresh fetches the JWKS now, e.g. at start so a misconfiguration shows
// at once rather than on the first request.
func (v *Verifier) Refresh(ctx context.Context) error { return v.keys.refresh(ctx) }

// Verify checks an access token (without the "Bearer " prefix) and returns
// who it speaks for. Errors wrap ErrNoToken, ErrInvalidToken (ErrExpired,
// ErrUnknownKey and ErrRevoked among them) or ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenSize {
		return nil, invalid("%d bytes exceeds the %d-byte limit", len(token), MaxTokenSize)
	}
	now := v.cfg.Now()
	p, ok := v.cache.get(token, now, v.cfg.Leeway)
	if !ok {
		var err error
		if p, err = v.parse(ctx, token, now); err != nil {
			return nil, err
		}
		v.cache.put(token, p)
	}
	if v.cfg.Revocations != nil {
		if err := v.cfg.Revocations.Check(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// verifiedCache remembers the principals of tokens whose signature and
// claims verified, keyed by the exact token string, so a token presented
// again (every request of a session) skips the Ed25519 check, the dominant
// cost. Expiry is checked on every hit and revocation after it, so a hit is
// as trustworthy as a fresh parse. When full, an arbitrary half is dropped.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]*Principal
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[string]*Principal), max: max}
}

func (c *verifiedCache) get(tok string, now time.Time, leeway time.Duration) (*Principal, bool) {
	c.mu.RLock()
	p, ok := c.m[tok]
	c.mu.RUnlock()
	if !ok || !now.Before(p.ExpiresAt.Add(leeway)) {
		return nil, false
	}
	return p, true
}

func (c *verifiedCache) put(tok string, p *Principal) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		n := 0
		for k := range c.m {
			if n >= c.max/2 {
				break
			}
			delete(c.m, k)
			n++
		}
	}
	c.m[tok] = p
}

// Authorize verifies the bearer token of an Authorization header value and
// applies reqs to its principal: what every middleware does.
func (v *Verifier) Authorize(ctx context.Context, authorization string, reqs ...Requirement) (*Principal, error) {
	p, err := v.Verify(ctx, BearerToken(authorization))
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := r(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}
