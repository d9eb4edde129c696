package token

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestNewOpaque(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		plain, hash, err := NewOpaque()
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) != 43 {
			t.Fatalf("plain %q has length %d, want 43", plain, len(plain))
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(plain)
		if err != nil || len(raw) != 32 {
			t.Fatalf("plain %q: not 32 bytes of unpadded base64url (%d bytes, err %v)", plain, len(raw), err)
		}
		if hash != HashOpaque(plain) {
			t.Fatalf("hash %q != HashOpaque(plain)", hash)
		}
		if seen[plain] {
			t.Fatalf("duplicate token %q", plain)
		}
		seen[plain] = true
	}
}

func TestHashOpaque(t *testing.T) {
	// Stable across releases: stored hashes must keep matching.
	if got, want := HashOpaque("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashOpaque(abc) = %s, want %s", got, want)
	}
	plain := "s3cr3t-token-value"
	sum := sha256.Sum256([]byte(plain))
	if HashOpaque(plain) != hex.EncodeToString(sum[:]) {
		t.Error("HashOpaque is not hex(SHA-256(plain))")
	}
	if HashOpaque("a") == HashOpaque("b") {
		t.Error("different inputs hash equal")
	}
	if len(HashOpaque("")) != 64 {
		t.Error("hash is not 64 hex chars")
	}
}
