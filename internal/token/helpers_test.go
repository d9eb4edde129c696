package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://usersvc.test"
	testAudience = "usersvc-api"
	testTTL      = 15 * time.Minute
)

// t0 is the fixed "now" used by tests that need a deterministic clock.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fixedKey returns a deterministic key derived from seed byte b, with its
// thumbprint as kid.
func fixedKey(b byte) Key {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	return Key{ID: thumbprint(pub), Private: priv, Public: pub}
}

func mustKeyring(t testing.TB, signing Key, verify ...Key) *Keyring {
	t.Helper()
	kr, err := NewKeyring(signing, verify...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

func fixedClock(now time.Time) func() time.Time { return func() time.Time { return now } }

func mustManager(t testing.TB, kr *Keyring, now func() time.Time) *Manager {
	t.Helper()
	m, err := NewManager(kr, Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Now: now})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// validClaims returns a payload that Parse accepts at now when signed by a
// key in the ring; tests then break one thing at a time.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":  testIssuer,
		"aud":  testAudience,
		"sub":  "user-1",
		"iat":  now.Unix(),
		"exp":  now.Add(testTTL).Unix(),
		"jti":  "0194f1a2-0000-7000-8000-000000000001",
		"role": "user",
		"sv":   3,
	}
}

// signRaw signs claims with an arbitrary method and key, bypassing Manager.
// header entries are set on the JOSE header; a nil value deletes the entry.
func signRaw(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSegment decodes part i (0 header, 1 payload) of a compact JWS.
func decodeSegment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode segment %d: %v", i, err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal segment %d: %v", i, err)
	}
	return m
}
