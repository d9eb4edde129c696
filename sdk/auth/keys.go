package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSBytes bounds the JWKS document read from the network.
const maxJWKSBytes = 1 << 20

// A KeySource fetches the user service's JWKS document (RFC 7517).
type KeySource interface {
	FetchJWKS(ctx context.Context) ([]byte, error)
}

// KeySourceFunc adapts a function to KeySource, e.g. one that calls the
// user service's Keys RPC.
type KeySourceFunc func(ctx context.Context) ([]byte, error)

// FetchJWKS calls f.
func (f KeySourceFunc) FetchJWKS(ctx context.Context) ([]byte, error) { return f(ctx) }

// JWKSURL fetches the JWKS over HTTP(S) from url, e.g.
// "http://gateway/.well-known/jwks.json". A nil client means one with a 10s
// timeout.
func JWKSURL(url string, client *http.Client) KeySource {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return KeySourceFunc(func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("jwks request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("jwks: GET %s: %s", url, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("jwks: read: %w", err)
		}
		if len(body) > maxJWKSBytes {
			return nil, fmt.Errorf("jwks: document exceeds %d bytes", maxJWKSBytes)
		}
		return body, nil
	})
}

// ParseJWKS returns the Ed25519 signing keys of a JWKS document by kid.
// Keys of other types or uses are skipped (a set may hold them), but a
// malformed Ed25519 key is an error, as is a set with no usable key.
func ParseJWKS(doc []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != algEdDSA) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || k.Kid == "" {
			return nil, fmt.Errorf("jwks: malformed Ed25519 key %.64q", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no Ed25519 signing key")
	}
	return keys, nil
}

// keyCache holds the keys of the last JWKS fetched. Lookups of known keys
// take no lock; an unknown kid triggers one fetch, at most once per floor,
// and so does a known one once the keys are older than maxAge, so a key
// the service stopped publishing (retired, or compromised) stops
// verifying.
type keyCache struct {
	src       KeySource
	floor     time.Duration
	maxAge    time.Duration
	now       func() time.Time
	keys      atomic.Pointer[map[string]ed25519.PublicKey]
	fetchedAt atomic.Int64 // unix nanos of the last successful fetch

	mu        sync.Mutex // one fetch at a time; guards lastFetch
	lastFetch time.Time
	fetches   atomic.Int64
}

// lookup returns kid's key, fetching the JWKS when kid is unknown and the
// floor allows.
func (c *keyCache) lookup(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := c.known(kid); ok {
		if c.now().UnixNano()-c.fetchedAt.Load() < int64(c.maxAge) || !c.refreshStale(ctx) {
			return k, nil
		}
		if k, ok := c.known(kid); ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w %.64q: no longer published", ErrUnknownKey, kid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.known(kid); ok { // fetched while we waited
		return k, nil
	}
	now := c.now()
	if !c.lastFetch.IsZero() && now.Sub(c.lastFetch) < c.floor {
		if c.keys.Load() == nil {
			return nil, fmt.Errorf("%w: no JWKS yet; next fetch allowed in %v", ErrUnavailable, c.floor-now.Sub(c.lastFetch))
		}
		return nil, fmt.Errorf("%w %.64q (JWKS fetched %v ago)", ErrUnknownKey, kid, now.Sub(c.lastFetch))
	}
	c.lastFetch = now
	if err := c.fetchLocked(ctx); err != nil {
		return nil, err
	}
	if k, ok := c.known(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w %.64q", ErrUnknownKey, kid)
}

// refreshStale fetches the JWKS again, unless another goroutine is
// fetching or the floor forbids it, and reports whether it did. A failure
// keeps the old keys: the service being briefly unreachable must not stop
// every token from verifying.
func (c *keyCache) refreshStale(ctx context.Context) bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.lastFetch) < c.floor {
		return false
	}
	c.lastFetch = now
	return c.fetchLocked(ctx) == nil
}

// refresh fetches the JWKS now, ignoring the floor.
func (c *keyCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastFetch = c.now()
	return c.fetchLocked(ctx)
}

func (c *keyCache) fetchLocked(ctx context.Context) error {
	c.fetches.Add(1)
	doc, err := c.src.FetchJWKS(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	keys, err := ParseJWKS(doc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c.keys.Store(&keys)
	c.fetchedAt.Store(c.now().UnixNano())
	return nil
}

func (c *keyCache) known(kid string) (ed25519.PublicKey, bool) {
	m := c.keys.Load()
	if m == nil {
		return nil, false
	}
	k, ok := (*m)[kid]
	return k, ok
}
