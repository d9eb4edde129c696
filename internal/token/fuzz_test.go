package token

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzParse seed files")

// fuzzKey and fuzzNow make the fixture token fully deterministic: Ed25519
// signatures are deterministic, so the same claims always give the same
// token, which lets a valid token live in the committed seed corpus.
var fuzzKey = fixedKey(0x42)

const fuzzJTI = "01943b2a-5c00-7000-8000-0000000f0221"

func fuzzManager(t testing.TB) *Manager {
	return mustManager(t, mustKeyring(t, fuzzKey), fixedClock(t0))
}

// fuzzFixture is the deterministic valid token stored as seed "valid".
func fuzzFixture(t testing.TB, m *Manager) string {
	t.Helper()
	tok, err := m.sign(Claims{
		Subject:        "user-fuzz",
		Role:           "admin",
		SessionVersion: 7,
		ID:             fuzzJTI,
		IssuedAt:       t0,
		ExpiresAt:      t0.Add(testTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fuzzSeeds returns the committed seed corpus, by file name.
func fuzzSeeds(t testing.TB) map[string]string {
	m := fuzzManager(t)
	valid := fuzzFixture(t, m)
	parts := strings.Split(valid, ".")
	noneHdr := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": fuzzKey.ID})
	tampered := decodeSegment(t, valid, 1)
	tampered["role"] = "superuser"
	return map[string]string{
		"valid":            valid,
		"alg_none":         noneHdr + "." + parts[1] + ".",
		"alg_none_sig":     noneHdr + "." + parts[1] + "." + parts[2],
		"hs256_confusion":  signRaw(t, jwt.SigningMethodHS256, []byte(fuzzKey.Public), map[string]any{"kid": fuzzKey.ID}, validClaims(t0)),
		"tampered_payload": parts[0] + "." + b64JSON(t, tampered) + "." + parts[2],
		"no_signature":     parts[0] + "." + parts[1] + ".",
		"garbage":          "not.a.token",
		"binary":           "\x00\xff\xfe.\x80..\n",
		"empty":            "",
	}
}

func seedPath(name string) string {
	return filepath.Join("testdata", "fuzz", "FuzzParse", name)
}

func encodeSeed(s string) string {
	return fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
}

// TestFuzzSeedCorpus keeps the committed seed files in sync with the code
// that defines them (so "valid" really is a token FuzzParse's manager
// accepts). Run with -update-fuzz-seeds to rewrite them.
func TestFuzzSeedCorpus(t *testing.T) {
	for name, s := range fuzzSeeds(t) {
		path := seedPath(name)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(encodeSeed(s)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("seed %s: %v (run go test -run TestFuzzSeedCorpus -update-fuzz-seeds)", name, err)
			continue
		}
		if string(got) != encodeSeed(s) {
			t.Errorf("seed %s is stale (run go test -run TestFuzzSeedCorpus -update-fuzz-seeds)", name)
		}
	}
	m := fuzzManager(t)
	if _, err := m.Parse(fuzzFixture(t, m)); err != nil {
		t.Errorf("fixture token does not parse: %v", err)
	}
}

// FuzzParse checks that Parse never panics, and that nothing verifies except
// the exact tokens this test signed: no mutation of a valid token (payload,
// header, signature, encoding) may be accepted.
func FuzzParse(f *testing.F) {
	m := fuzzManager(f)
	// Only deterministic tokens: the fuzzing engine runs this setup in
	// several worker processes and passes inputs between them, so a token
	// with a random jti from Issue would be "foreign" to the other workers.
	fixture := fuzzFixture(f, m)
	second, err := m.sign(Claims{Subject: "user-2", ID: "second", IssuedAt: t0, ExpiresAt: t0.Add(testTTL)})
	if err != nil {
		f.Fatal(err)
	}
	accepted := map[string]bool{fixture: true, second: true}
	f.Add(fixture)
	f.Add(second)
	f.Add(second + ".")
	f.Add(strings.Repeat("a", MaxTokenSize+1))

	f.Fuzz(func(t *testing.T, s string) {
		c, err := m.Parse(s)
		if err != nil {
			if accepted[s] {
				t.Fatalf("issued token rejected: %v", err)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error does not wrap ErrInvalidToken: %v", err)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Fatalf("claims returned with error: %+v", c)
			}
			return
		}
		if !accepted[s] {
			t.Fatalf("Parse accepted a token it did not issue: %q -> %+v", s, c)
		}
		if c.Subject == "" || c.ID == "" || c.IssuedAt.IsZero() || !c.ExpiresAt.After(c.IssuedAt) ||
			c.ExpiresAt.Sub(c.IssuedAt) != testTTL || !c.IssuedAt.Equal(t0.Truncate(time.Second)) {
			t.Fatalf("implausible claims: %+v", c)
		}
	})
}
