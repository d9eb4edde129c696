package password

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// testParams are far below any production setting; they keep the many
// Hash/Verify round trips in these tests fast, also under -race.
var testParams = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newTestHasher(t testing.TB, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

func mustHash(t testing.TB, h *Hasher, password string) string {
	t.Helper()
	encoded, err := h.Hash(context.Background(), password)
	if err != nil {
		t.Fatalf("Hash(%q): %v", password, err)
	}
	return encoded
}

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

func TestParamsValidate(t *testing.T) {
	with := func(mod func(*Params)) Params {
		p := testParams
		mod(&p)
		return p
	}
	tests := []struct {
		name      string
		p         Params
		wantField string // "" means valid
	}{
		{"test params", testParams, ""},
		{"default", DefaultParams(), ""},
		{"minimum memory for p=4", with(func(p *Params) { p.Memory, p.Parallelism = 32, 4 }), ""},
		{"4 GiB memory", with(func(p *Params) { p.Memory = 4 << 20 }), ""},
		{"salt/key bounds", with(func(p *Params) { p.SaltLength, p.KeyLength = 8, 64 }), ""},
		{"zero value", Params{}, "Parallelism"},
		{"zero parallelism", with(func(p *Params) { p.Parallelism = 0 }), "Parallelism"},
		{"memory below 8*p", with(func(p *Params) { p.Memory, p.Parallelism = 31, 4 }), "Memory"},
		{"memory above 4 GiB", with(func(p *Params) { p.Memory = 4<<20 + 1 }), "Memory"},
		{"zero iterations", with(func(p *Params) { p.Iterations = 0 }), "Iterations"},
		{"too many iterations", with(func(p *Params) { p.Iterations = 101 }), "Iterations"},
		{"short salt", with(func(p *Params) { p.SaltLength = 7 }), "SaltLength"},
		{"huge salt", with(func(p *Params) { p.SaltLength = 1 << 20 }), "SaltLength"},
		{"short key", with(func(p *Params) { p.KeyLength = 15 }), "KeyLength"},
		{"huge key", with(func(p *Params) { p.KeyLength = 1 << 20 }), "KeyLength"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("Validate() = %v, want error naming %s", err, tt.wantField)
			}
			if h, err := NewHasher(tt.p); err == nil || h != nil {
				t.Fatalf("NewHasher() = %v, %v; want nil, error", h, err)
			}
		})
	}
}

func TestHashFormat(t *testing.T) {
	h := newTestHasher(t, testParams)
	// 16-byte salt -> 22 base64 chars, 32-byte key -> 43, no padding.
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	a, b := mustHash(t, h, "correct horse"), mustHash(t, h, "correct horse")
	for _, enc := range []string{a, b} {
		if !phc.MatchString(enc) {
			t.Errorf("Hash() = %q, not a PHC argon2id string with the hasher's params", enc)
		}
	}
	if a == b {
		t.Errorf("two hashes of the same password are identical (%q): salt is not random", a)
	}
}

// The dummy of unknown-email logins: the same format and parameters as a
// real hash (so verifying against it costs the same), random each time,
// and no password matches it.
func TestUnmatchable(t *testing.T) {
	h := newTestHasher(t, testParams)
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	a, err := h.Unmatchable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Unmatchable()
	if !phc.MatchString(a) || a == b {
		t.Errorf("Unmatchable() = %q, %q: want two different PHC strings with the hasher's params", a, b)
	}
	for _, pw := range []string{"", "correct horse", a} {
		if ok, rehash, err := h.Verify(context.Background(), pw, a); ok || rehash || err != nil {
			t.Errorf("Verify(%q, unmatchable) = %v, %v, %v; want false, false, nil", pw, ok, rehash, err)
		}
	}
	if _, err := (&Hasher{}).Unmatchable(); err == nil {
		t.Error("the zero Hasher made a dummy hash")
	}
}

// TestDefaultParamsRoundTrip is the one test that pays for production-sized
// parameters, to make sure they work end to end.
func TestDefaultParamsRoundTrip(t *testing.T) {
	h := newTestHasher(t, DefaultParams())
	enc := mustHash(t, h, "correct horse battery staple")
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("Hash() = %q, want DefaultParams in the PHC header", enc)
	}
	p, salt, key, err := decode(enc)
	if err != nil {
		t.Fatalf("decode(%q): %v", enc, err)
	}
	if p != DefaultParams() || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("decoded %+v, salt %d bytes, key %d bytes; want DefaultParams", p, len(salt), len(key))
	}
	if ok, rehash, err := h.Verify(context.Background(), "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Fatalf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	if ok, rehash, err := h.Verify(context.Background(), "correct horse battery stapler", enc); ok || rehash || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
}

func TestHashZeroHasher(t *testing.T) {
	var h Hasher
	if enc, err := h.Hash(context.Background(), "correct horse"); err == nil {
		t.Fatalf("zero Hasher Hash() = %q, nil; want error", enc)
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := newTestHasher(t, testParams)
	for _, pw := range []string{
		"",
		"correct horse battery staple",
		"pässwörd 🔑 漢字",
		"nul\x00byte",
		"\xff\xfe not UTF-8", // Hash is byte-exact; the Policy rejects this earlier
		strings.Repeat("long ", 1000),
	} {
		enc := mustHash(t, h, pw)
		ok, rehash, err := h.Verify(context.Background(), pw, enc)
		if !ok || rehash || err != nil {
			t.Errorf("Verify(%.20q) = %v, %v, %v; want true, false, nil", pw, ok, rehash, err)
		}
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h := newTestHasher(t, testParams)
	const pw = "correct horse battery staple"
	enc := mustHash(t, h, pw)
	for _, wrong := range []string{
		"",
		"Correct horse battery staple",
		"correct horse battery staple ",
		"correct horse battery stapl",
		"correct horse battery staple\x00",
		"correcthorsebatterystaple",
	} {
		ok, rehash, err := h.Verify(context.Background(), wrong, enc)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
		}
	}
}

// TestVerifyKnownVectors checks that the PHC encoding and decoding match the
// argon2id test vectors of golang.org/x/crypto/argon2, which match the
// reference implementation (password "password", salt "somesalt", 24-byte
// key).
func TestVerifyKnownVectors(t *testing.T) {
	h := newTestHasher(t, Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 24})
	tests := []struct {
		encoded     string
		needsRehash bool
	}{
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7", false},
		{"$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHQ$NQrDciL0Nsy1wJcvHr079rlYvyBxhBNi", true},
		{"$argon2id$v=19$m=256,t=3,p=2$c29tZXNhbHQ$RmjTCsQYfmh47t6s8P2DxaCjDbLMFu8L", true},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify(context.Background(), "password", tt.encoded)
		if !ok || rehash != tt.needsRehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want true, %v, nil", tt.encoded, ok, rehash, err, tt.needsRehash)
		}
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	current := newTestHasher(t, testParams)
	with := func(mod func(*Params)) Params {
		p := testParams
		mod(&p)
		return p
	}
	tests := []struct {
		name   string
		stored Params
		want   bool
	}{
		{"same params", testParams, false},
		{"different memory", with(func(p *Params) { p.Memory = 128 }), true},
		{"different iterations", with(func(p *Params) { p.Iterations = 2 }), true},
		{"different parallelism", with(func(p *Params) { p.Parallelism = 2 }), true},
		{"different key length", with(func(p *Params) { p.KeyLength = 16 }), true},
		// Salt length is not a cost parameter; it does not trigger a rehash.
		{"different salt length", with(func(p *Params) { p.SaltLength = 32 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustHash(t, newTestHasher(t, tt.stored), "correct horse")
			ok, rehash, err := current.Verify(context.Background(), "correct horse", enc)
			if !ok || rehash != tt.want || err != nil {
				t.Fatalf("Verify(right) = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.want)
			}
			// Never signal a rehash for a wrong password: the caller would
			// overwrite the real password with the guess.
			ok, rehash, err = current.Verify(context.Background(), "wrong horse", enc)
			if ok || rehash || err != nil {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newTestHasher(t, testParams)
	// Every case is the valid known-vector hash with one thing broken, so a
	// case fails only because of its own defect.
	const (
		salt  = "c29tZXNhbHQ"                      // "somesalt"
		key   = "ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7" // 24 bytes
		cost  = "m=64,t=1,p=1"
		valid = "$argon2id$v=19$" + cost + "$" + salt + "$" + key
	)
	build := func(alg, version, cost, salt, key string) string {
		return "$" + strings.Join([]string{alg, version, cost, salt, key}, "$")
	}
	withCost := func(c string) string { return build("argon2id", "v=19", c, salt, key) }
	withSalt := func(s string) string { return build("argon2id", "v=19", cost, s, key) }
	withKey := func(k string) string { return build("argon2id", "v=19", cost, salt, k) }
	b64 := func(n int) string { return strings.Repeat("A", (n*8+5)/6) } // n zero bytes, canonical

	if ok, _, err := h.Verify(context.Background(), "password", valid); !ok || err != nil {
		t.Fatalf("base case %q does not verify: %v, %v", valid, ok, err)
	}
	tests := []struct {
		name, encoded string
		wantInErr     string // optional detail the error must mention
	}{
		{"empty", "", ""},
		{"dollar only", "$", ""},
		{"plain text", "password", ""},
		{"no leading dollar", strings.TrimPrefix(valid, "$"), ""},
		{"trailing dollar", valid + "$", ""},
		{"extra field", valid + "$extra", ""},
		{"argon2i", build("argon2i", "v=19", cost, salt, key), "argon2i"},
		{"argon2d", build("argon2d", "v=19", cost, salt, key), "argon2d"},
		{"uppercase algorithm", build("ARGON2ID", "v=19", cost, salt, key), ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ""},
		{"missing version field", "$argon2id$" + cost + "$" + salt + "$" + key, ""},
		{"version 16", build("argon2id", "v=16", cost, salt, key), "version"},
		{"empty version", build("argon2id", "v=", cost, salt, key), "version"},
		{"version garbage", build("argon2id", "v=19x", cost, salt, key), "version"},
		{"missing salt and key", "$argon2id$v=19$" + cost, ""},
		{"missing key", "$argon2id$v=19$" + cost + "$" + salt, ""},
		{"empty cost", withCost(""), ""},
		{"missing p", withCost("m=64,t=1"), ""},
		{"extra cost param", withCost("m=64,t=1,p=1,x=2"), ""},
		{"wrong order", withCost("t=1,m=64,p=1"), ""},
		{"spaces", withCost("m=64, t=1, p=1"), ""},
		{"non-numeric memory", withCost("m=abc,t=1,p=1"), ""},
		{"negative memory", withCost("m=-64,t=1,p=1"), ""},
		{"memory overflows uint32", withCost("m=4294967296,t=1,p=1"), ""},
		{"zero memory", withCost("m=0,t=1,p=1"), "Memory"},
		{"memory below 8*p", withCost("m=31,t=1,p=4"), "Memory"},
		{"memory above 4 GiB", withCost("m=4194305,t=1,p=1"), "Memory"},
		{"max uint32 everything", withCost("m=4294967295,t=4294967295,p=255"), "Memory"},
		{"zero iterations", withCost("m=64,t=0,p=1"), "Iterations"},
		{"absurd iterations", withCost("m=64,t=101,p=1"), "Iterations"},
		{"zero parallelism", withCost("m=64,t=1,p=0"), "Parallelism"},
		{"parallelism overflows uint8", withCost("m=4096,t=1,p=256"), ""},
		{"empty salt", withSalt(""), "SaltLength"},
		{"short salt", withSalt(b64(7)), "SaltLength"},
		{"huge salt", withSalt(b64(65)), "SaltLength"},
		{"bad base64 salt", withSalt("!!!!not*base64"), "salt"},
		{"padded base64 salt", withSalt(salt + "="), "salt"},
		{"url-safe base64 salt", withSalt("c29tZXNhbHQ_-"), "salt"},
		{"non-canonical base64 salt", withSalt("c29tZXNhbHR"), "salt"},
		{"empty key", withKey(""), "KeyLength"},
		{"short key", withKey(b64(15)), "KeyLength"},
		{"huge key", withKey(b64(65)), "KeyLength"},
		{"bad base64 key", withKey("ZVrRXqxl#LcWfcX"), "key"},
		{"megabyte key", withKey(strings.Repeat("A", 1<<20)), "longer than any valid hash"},
		{"whitespace around", " " + valid + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(context.Background(), "password", tt.encoded)
			if ok || rehash {
				t.Fatalf("Verify() = %v, %v, %v; want false, false, error", ok, rehash, err)
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify() error = %v; want it to wrap ErrMalformedHash", err)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Verify() error = %q; want it to mention %q", err, tt.wantInErr)
			}
		})
	}
}

// TestConcurrentUse runs a Hasher and a Policy from many goroutines; run it
// with -race to check that neither has shared mutable state (zxcvbn-go's
// package tables are only read after init).
func TestConcurrentUse(t *testing.T) {
	h := newTestHasher(t, testParams)
	policy := DefaultPolicy()
	var wg sync.WaitGroup
	for i := range 8 {
		pw := strings.Repeat("x", i) + "correct horse battery staple"
		wg.Go(func() {
			enc, err := h.Hash(context.Background(), pw)
			if err != nil {
				t.Errorf("Hash: %v", err)
				return
			}
			if ok, _, err := h.Verify(context.Background(), pw, enc); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
			if err := policy.Check(pw, "alice@example.com"); err != nil {
				t.Errorf("Check(%q) = %v", pw, err)
			}
		})
	}
	wg.Wait()
}
