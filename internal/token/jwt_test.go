package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

func TestIssueParseRoundTrip(t *testing.T) {
	key := fixedKey(1)
	m := mustManager(t, mustKeyring(t, key), fixedClock(t0.Add(123*time.Millisecond)))

	tok, issued, err := m.Issue(context.Background(), "user-42", "admin", 7, "family-9", true, SignIn{})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	want := Claims{
		Subject:        "user-42",
		Role:           "admin",
		SessionVersion: 7,
		ID:             issued.ID,
		SessionID:      "family-9",
		EmailVerified:  true,
		IssuedAt:       t0, // truncated to the second
		ExpiresAt:      t0.Add(testTTL),
	}
	if !reflect.DeepEqual(issued, want) {
		t.Errorf("Issue claims = %+v, want %+v", issued, want)
	}
	id, err := uuid.Parse(issued.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("jti %q: want a UUIDv7 (err %v)", issued.ID, err)
	}

	got, err := m.Parse(tok)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse claims = %+v, want %+v", got, want)
	}

	// The wire format other services see.
	hdr := decodeSegment(t, tok, 0)
	if hdr["alg"] != "EdDSA" || hdr["typ"] != "JWT" || hdr["kid"] != key.ID || len(hdr) != 3 {
		t.Errorf("header = %v", hdr)
	}
	p := decodeSegment(t, tok, 1)
	wantPayload := map[string]any{
		"iss":  testIssuer,
		"aud":  testAudience, // a single string, not a list
		"sub":  "user-42",
		"iat":  float64(t0.Unix()),
		"exp":  float64(t0.Add(testTTL).Unix()),
		"jti":  issued.ID,
		"role": "admin",
		"sv":   float64(7),
		"sid":  "family-9",
		// OpenID Connect's claim name, so relying parties read it as such.
		"email_verified": true,
	}
	if len(p) != len(wantPayload) {
		t.Errorf("payload = %v, want %v", p, wantPayload)
	}
	for k, v := range wantPayload {
		if p[k] != v {
			t.Errorf("payload[%q] = %#v, want %#v", k, p[k], v)
		}
	}
	if m.TTL() != testTTL {
		t.Errorf("TTL() = %v", m.TTL())
	}
}

func TestIssueUniqueIDs(t *testing.T) {
	m := mustManager(t, mustKeyring(t, fixedKey(1)), nil)
	seen := map[string]bool{}
	for range 100 {
		_, c, err := m.Issue(context.Background(), "u", "r", 0, "", false, SignIn{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] {
			t.Fatalf("duplicate jti %s", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestIssueEmptySubject(t *testing.T) {
	m := mustManager(t, mustKeyring(t, fixedKey(1)), nil)
	if _, _, err := m.Issue(context.Background(), "", "admin", 1, "", false, SignIn{}); err == nil {
		t.Fatal("Issue with empty subject succeeded")
	}
}

func TestParseDefaultClock(t *testing.T) {
	m := mustManager(t, mustKeyring(t, fixedKey(1)), nil) // real time.Now
	tok, _, err := m.Issue(context.Background(), "u", "r", 1, "", false, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Parse(tok); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	key := fixedKey(1)
	kr := mustKeyring(t, key)
	m := mustManager(t, kr, fixedClock(t0))
	valid, _, err := m.Issue(context.Background(), "user-1", "user", 3, "", false, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	kidHdr := map[string]any{"kid": key.ID}

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(t0)
		edit(c)
		return c
	}
	ed := func(hdr map[string]any, c jwt.MapClaims) string {
		return signRaw(t, jwt.SigningMethodEdDSA, key.Private, hdr, c)
	}

	// Payload tampering: same header and signature, role changed.
	tamperedPayload := func() string {
		p := decodeSegment(t, valid, 1)
		p["role"] = "admin"
		return parts[0] + "." + b64JSON(t, p) + "." + parts[2]
	}()
	// Signature tampering: flip bits of the first signature byte.
	tamperedSig := func() string {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 0xff
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}()
	// Same signature bytes, non-canonical base64 (unused trailing bits set):
	// must not verify, so only the exact issued string is accepted.
	nonCanonicalSig := func() string {
		s := parts[2]
		last := strings.Index("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[len(s)-1:])
		alt := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1 : last|1+1]
		if alt == s[len(s)-1:] {
			t.Fatal("could not build non-canonical variant")
		}
		return parts[0] + "." + parts[1] + "." + s[:len(s)-1] + alt
	}()

	// Another key under another kid; and another key under OUR kid.
	other := fixedKey(2)
	impostor := fixedKey(3)
	impostor.ID = key.ID

	// alg "none", built by hand as an attacker would.
	noneHdr := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID})
	nonePayload := b64JSON(t, validClaims(t0))
	algNone := noneHdr + "." + nonePayload + "."
	algNoneWithSig := noneHdr + "." + nonePayload + "." + parts[2]
	algNoneLower := b64JSON(t, map[string]any{"alg": "NONE", "kid": key.ID}) + "." + nonePayload + "."

	// Algorithm confusion: HS256 keyed with the public key bytes (which are
	// published in the JWKS), and with the PEM-less raw bytes of x.
	hs256 := signRaw(t, jwt.SigningMethodHS256, []byte(key.Public), kidHdr, validClaims(t0))
	hs256x := signRaw(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(key.Public)), kidHdr, validClaims(t0))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs256 := signRaw(t, jwt.SigningMethodRS256, rsaKey, kidHdr, validClaims(t0))
	es256 := signRaw(t, jwt.SigningMethodES256, ecKey, kidHdr, validClaims(t0))
	// EdDSA header over an ES256 signature and vice versa.
	es256AsEdDSA := b64JSON(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": key.ID}) + "." +
		strings.SplitN(es256, ".", 2)[1]

	cases := map[string]string{
		"empty":                "",
		"garbage":              "not a token",
		"dots":                 "..",
		"two parts":            parts[0] + "." + parts[1],
		"four parts":           valid + ".x",
		"bad base64":           "!!!." + parts[1] + "." + parts[2],
		"header not JSON":      base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2],
		"payload not object":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + "." + parts[2],
		"padded segments":      parts[0] + "=." + parts[1] + "." + parts[2],
		"whitespace":           " " + valid,
		"oversize":             valid + "." + strings.Repeat("A", MaxTokenSize),
		"oversize padding":     strings.Repeat("A", MaxTokenSize+1),
		"tampered payload":     tamperedPayload,
		"tampered signature":   tamperedSig,
		"non-canonical sig":    nonCanonicalSig,
		"empty signature":      parts[0] + "." + parts[1] + ".",
		"unknown key":          signRaw(t, jwt.SigningMethodEdDSA, other.Private, map[string]any{"kid": other.ID}, validClaims(t0)),
		"unknown key, our kid": signRaw(t, jwt.SigningMethodEdDSA, other.Private, kidHdr, validClaims(t0)),
		"same kid other key":   mustManager(t, mustKeyring(t, impostor), fixedClock(t0)).mustIssue(t),
		"alg none":             algNone,
		"alg none with sig":    algNoneWithSig,
		"alg NONE":             algNoneLower,
		"HS256 public key":     hs256,
		"HS256 public x":       hs256x,
		"RS256":                rs256,
		"ES256":                es256,
		"ES256 sig as EdDSA":   es256AsEdDSA,
		"missing kid":          ed(map[string]any{"kid": nil}, validClaims(t0)),
		"empty kid":            ed(map[string]any{"kid": ""}, validClaims(t0)),
		"numeric kid":          ed(map[string]any{"kid": 1}, validClaims(t0)),
		"crit header":          ed(map[string]any{"kid": key.ID, "crit": []string{"exp"}}, validClaims(t0)),
		"wrong audience":       ed(kidHdr, with(func(c jwt.MapClaims) { c["aud"] = "other-api" })),
		"audience list":        ed(kidHdr, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} })),
		"missing audience":     ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "aud") })),
		"wrong issuer":         ed(kidHdr, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })),
		"missing issuer":       ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "iss") })),
		"iat in future":        ed(kidHdr, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Minute).Unix() })),
		"missing iat":          ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "iat") })),
		"iat string":           ed(kidHdr, with(func(c jwt.MapClaims) { c["iat"] = "yesterday" })),
		"missing exp":          ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"nbf in future":        ed(kidHdr, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() })),
		"missing sub":          ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "sub") })),
		"empty sub":            ed(kidHdr, with(func(c jwt.MapClaims) { c["sub"] = "" })),
		"missing jti":          ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "jti") })),
		"missing sv":           ed(kidHdr, with(func(c jwt.MapClaims) { delete(c, "sv") })),
		"fractional sv":        ed(kidHdr, with(func(c jwt.MapClaims) { c["sv"] = 1.5 })),
		"string sv":            ed(kidHdr, with(func(c jwt.MapClaims) { c["sv"] = "3" })),
		"expired, wrong aud": ed(kidHdr, with(func(c jwt.MapClaims) {
			c["exp"] = t0.Add(-time.Minute).Unix()
			c["aud"] = "other-api"
		})),
		"expired, missing sub": ed(kidHdr, with(func(c jwt.MapClaims) {
			c["exp"] = t0.Add(-time.Minute).Unix()
			delete(c, "sub")
		})),
	}
	// Sanity check of the fixture: the untouched hand-signed payload passes.
	if _, err := m.Parse(ed(kidHdr, validClaims(t0))); err != nil {
		t.Fatalf("fixture: valid hand-signed token rejected: %v", err)
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := m.Parse(tok)
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", tok, c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if errors.Is(err, ErrExpired) {
				t.Errorf("error %v wraps ErrExpired for a token that is not merely expired", err)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Errorf("claims returned with error: %+v", c)
			}
		})
	}
}

func (m *Manager) mustIssue(t testing.TB) string {
	t.Helper()
	tok, _, err := m.Issue(context.Background(), "user-1", "user", 3, "", false, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestParseAcceptsAudienceList(t *testing.T) {
	key := fixedKey(1)
	m := mustManager(t, mustKeyring(t, key), fixedClock(t0))
	c := validClaims(t0)
	c["aud"] = []string{"other-api", testAudience}
	if _, err := m.Parse(signRaw(t, jwt.SigningMethodEdDSA, key.Private, map[string]any{"kid": key.ID}, c)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestParseExpired(t *testing.T) {
	kr := mustKeyring(t, fixedKey(1))
	issuer := mustManager(t, kr, fixedClock(t0))
	tok, _, err := issuer.Issue(context.Background(), "user-1", "user", 3, "", false, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(testTTL)

	for _, tc := range []struct {
		now     time.Time
		leeway  time.Duration
		expired bool
	}{
		{now: exp.Add(-time.Second)},
		{now: exp, expired: true}, // exp is exclusive (RFC 7519 §4.1.4)
		{now: exp.Add(time.Hour), expired: true},
		{now: exp.Add(29 * time.Second), leeway: 30 * time.Second},
		{now: exp.Add(30 * time.Second), leeway: 30 * time.Second, expired: true},
	} {
		m, err := NewManager(kr, Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Leeway: tc.leeway, Now: fixedClock(tc.now)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Parse(tok)
		switch {
		case tc.expired && !errors.Is(err, ErrExpired):
			t.Errorf("now=exp%+v leeway=%v: err = %v, want ErrExpired", tc.now.Sub(exp), tc.leeway, err)
		case tc.expired && !errors.Is(err, ErrInvalidToken):
			t.Errorf("ErrExpired does not wrap ErrInvalidToken: %v", err)
		case !tc.expired && err != nil:
			t.Errorf("now=exp%+v leeway=%v: err = %v, want nil", tc.now.Sub(exp), tc.leeway, err)
		}
	}
}

func TestParseIssuedAtLeeway(t *testing.T) {
	key := fixedKey(1)
	kr := mustKeyring(t, key)
	c := validClaims(t0)
	c["iat"] = t0.Add(20 * time.Second).Unix() // issuer's clock is 20s ahead
	tok := signRaw(t, jwt.SigningMethodEdDSA, key.Private, map[string]any{"kid": key.ID}, c)

	strict := mustManager(t, kr, fixedClock(t0))
	if _, err := strict.Parse(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("no leeway: err = %v, want ErrInvalidToken", err)
	}
	lenient, err := NewManager(kr, Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Leeway: 30 * time.Second, Now: fixedClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lenient.Parse(tok); err != nil {
		t.Errorf("30s leeway: err = %v, want nil", err)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := fixedKey(1), fixedKey(2)
	before := mustManager(t, mustKeyring(t, oldKey), fixedClock(t0))
	oldTok := before.mustIssue(t)

	// Rotate: new key signs, old key only verifies. Pass the old key with its
	// private half to show it is not used for signing.
	during := mustManager(t, mustKeyring(t, newKey, oldKey), fixedClock(t0))
	newTok := during.mustIssue(t)
	if got := decodeSegment(t, newTok, 0)["kid"]; got != newKey.ID {
		t.Errorf("new token kid = %v, want %v", got, newKey.ID)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := during.Parse(tok); err != nil {
			t.Errorf("during rotation, %s token: %v", name, err)
		}
	}
	// Public-only form of the old key works the same.
	oldPub := Key{ID: oldKey.ID, Public: oldKey.Public}
	if _, err := mustManager(t, mustKeyring(t, newKey, oldPub), fixedClock(t0)).Parse(oldTok); err != nil {
		t.Errorf("old token with public-only old key: %v", err)
	}

	// Retire the old key.
	after := mustManager(t, mustKeyring(t, newKey), fixedClock(t0))
	if _, err := after.Parse(newTok); err != nil {
		t.Errorf("after rotation, new token: %v", err)
	}
	if _, err := after.Parse(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("after rotation, old token: err = %v, want ErrInvalidToken", err)
	}
}

func TestNewManagerValidation(t *testing.T) {
	kr := mustKeyring(t, fixedKey(1))
	good := Config{Issuer: testIssuer, Audience: testAudience, TTL: testTTL}
	for name, tc := range map[string]struct {
		kr  *Keyring
		cfg func(*Config)
	}{
		"nil keyring":     {nil, func(*Config) {}},
		"empty issuer":    {kr, func(c *Config) { c.Issuer = "" }},
		"empty audience":  {kr, func(c *Config) { c.Audience = "" }},
		"zero TTL":        {kr, func(c *Config) { c.TTL = 0 }},
		"negative TTL":    {kr, func(c *Config) { c.TTL = -time.Minute }},
		"negative leeway": {kr, func(c *Config) { c.Leeway = -time.Second }},
	} {
		cfg := good
		tc.cfg(&cfg)
		if _, err := NewManager(tc.kr, cfg); err == nil {
			t.Errorf("%s: NewManager succeeded", name)
		}
	}
	if _, err := NewManager(kr, good); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// TestConcurrentUse runs Issue and Parse from many goroutines; with -race it
// checks that a Manager can be shared.
func TestConcurrentUse(t *testing.T) {
	m := mustManager(t, mustKeyring(t, fixedKey(1), fixedKey(2)), nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok, want, err := m.Issue(context.Background(), "user", "role", int64(g*1000+i), "", false, SignIn{})
				if err != nil {
					t.Error(err)
					return
				}
				got, err := m.Parse(tok)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("Parse = %+v, %v; want %+v", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkIssue(b *testing.B) {
	m := mustManager(b, mustKeyring(b, fixedKey(1)), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Issue(context.Background(), "user-42", "admin", 7, "", false, SignIn{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	m := mustManager(b, mustKeyring(b, fixedKey(1)), nil)
	tok, _, err := m.Issue(context.Background(), "user-42", "admin", 7, "", false, SignIn{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSignInClaims: amr and auth_time travel in a user's token (auth_time
// in whole seconds, as NumericDate), are absent from a token issued without
// them and from a service account's, and read back as written.
func TestSignInClaims(t *testing.T) {
	m := mustManager(t, mustKeyring(t, fixedKey(1)), fixedClock(t0))
	signIn := SignIn{AMR: []string{AMRPassword, AMROTP, AMRMFA}, AuthTime: t0.Add(-90*time.Second - 400*time.Millisecond)}
	tok, issued, err := m.Issue(context.Background(), "user-1", "user", 1, "fam", false, signIn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := SignIn{AMR: signIn.AMR, AuthTime: t0.Add(-91 * time.Second)}
	if !reflect.DeepEqual(got.SignIn, want) || !reflect.DeepEqual(issued.SignIn, want) {
		t.Errorf("sign-in claims: parsed %+v, issued %+v, want %+v", got.SignIn, issued.SignIn, want)
	}
	payload := decodePayload(t, tok)
	if !strings.Contains(payload, `"amr":["pwd","otp","mfa"]`) || !strings.Contains(payload, fmt.Sprintf(`"auth_time":%d`, want.AuthTime.Unix())) {
		t.Errorf("payload %s lacks amr or auth_time", payload)
	}
	for _, tok := range []string{mustIssueWith(t, m, SignIn{}), mustIssueClient(t, m)} {
		if p := decodePayload(t, tok); strings.Contains(p, "amr") || strings.Contains(p, "auth_time") {
			t.Errorf("payload %s has sign-in claims it was not given", p)
		}
	}
}

func mustIssueWith(t *testing.T, m *Manager, s SignIn) string {
	t.Helper()
	tok, _, err := m.Issue(context.Background(), "user-1", "user", 1, "", false, s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustIssueClient(t *testing.T, m *Manager) string {
	t.Helper()
	tok, _, err := m.IssueClient(context.Background(), "client-1", "users:read")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func decodePayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
