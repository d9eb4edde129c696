package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
)

// TestThumbprintRFC8037 checks the kid derivation against the worked example
// in RFC 8037 Appendix A.3.
func TestThumbprintRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func TestGenerateKey(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k1.Private) != ed25519.PrivateKeySize || len(k1.Public) != ed25519.PublicKeySize {
		t.Fatalf("key sizes %d/%d", len(k1.Private), len(k1.Public))
	}
	if !bytes.Equal(k1.Private.Public().(ed25519.PublicKey), k1.Public) {
		t.Error("public key does not match private key")
	}
	if k1.ID != thumbprint(k1.Public) || len(k1.ID) != 43 {
		t.Errorf("kid %q is not the 43-char thumbprint", k1.ID)
	}
	if k1.ID == k2.ID {
		t.Error("two generated keys share a kid")
	}
}

func TestNewKeyringValidation(t *testing.T) {
	a, b := fixedKey(1), fixedKey(2)
	pubOnly := func(k Key) Key { return Key{ID: k.ID, Public: k.Public} }
	for name, tc := range map[string]struct {
		signing Key
		verify  []Key
	}{
		"signing key without private":  {pubOnly(a), nil},
		"signing key without ID":       {Key{Private: a.Private}, nil},
		"short private key":            {Key{ID: "x", Private: a.Private[:10]}, nil},
		"mismatched public key":        {Key{ID: "x", Private: a.Private, Public: b.Public}, nil},
		"duplicate kid":                {a, []Key{{ID: a.ID, Public: b.Public}}},
		"duplicate verification kid":   {a, []Key{pubOnly(b), pubOnly(b)}},
		"verification key without ID":  {a, []Key{{Public: b.Public}}},
		"verification key without key": {a, []Key{{ID: "empty"}}},
		"short public key":             {a, []Key{{ID: "short", Public: b.Public[:31]}}},
	} {
		if _, err := NewKeyring(tc.signing, tc.verify...); err == nil {
			t.Errorf("%s: NewKeyring succeeded", name)
		}
	}

	// The public half is derived when absent.
	kr, err := NewKeyring(Key{ID: "derived", Private: a.Private})
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := kr.lookup("derived"); !ok || !bytes.Equal(pub, a.Public) {
		t.Error("public key not derived from private key")
	}
	if kr.SigningKeyID() != "derived" {
		t.Errorf("SigningKeyID = %q", kr.SigningKeyID())
	}
}

// TestKeyringCopiesKeys checks that mutating the caller's slices afterwards
// cannot change what the keyring verifies with.
func TestKeyringCopiesKeys(t *testing.T) {
	a := fixedKey(1)
	b := fixedKey(2)
	bPub := slices.Clone(b.Public)
	kr := mustKeyring(t, Key{ID: a.ID, Private: slices.Clone(a.Private)}, Key{ID: b.ID, Public: bPub})
	bPub[0] ^= 1
	if pub, _ := kr.lookup(b.ID); !bytes.Equal(pub, b.Public) {
		t.Error("keyring shares the caller's public key slice")
	}
}

func TestJWKS(t *testing.T) {
	keys := []Key{fixedKey(1), fixedKey(2), fixedKey(3)}
	// Signing key in the middle of the sort order, and a verification key
	// without a private half.
	kr := mustKeyring(t, keys[1], keys[2], Key{ID: keys[0].ID, Public: keys[0].Public})
	doc, err := kr.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS is not valid JSON: %v\n%s", err, doc)
	}
	if len(set.Keys) != len(keys) {
		t.Fatalf("JWKS has %d keys, want %d", len(set.Keys), len(keys))
	}
	byKid := map[string]Key{}
	for _, k := range keys {
		byKid[k.ID] = k
	}
	var kids []string
	for _, j := range set.Keys {
		kids = append(kids, j["kid"])
		k, ok := byKid[j["kid"]]
		if !ok {
			t.Errorf("unexpected kid %q", j["kid"])
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(j["x"])
		if err != nil || !bytes.Equal(x, k.Public) {
			t.Errorf("kid %s: x = %q does not decode to the public key (err %v)", k.ID, j["x"], err)
		}
		want := map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.ID, "x": j["x"]}
		if len(j) != len(want) {
			t.Errorf("kid %s: members %v, want exactly %v", k.ID, j, want)
		}
		for m, v := range want {
			if j[m] != v {
				t.Errorf("kid %s: %s = %q, want %q", k.ID, m, j[m], v)
			}
		}
		// No private material ("d") may leak.
		if _, ok := j["d"]; ok {
			t.Errorf("kid %s: JWKS contains the private key", k.ID)
		}
	}
	if !slices.IsSorted(kids) {
		t.Errorf("kids not sorted: %v", kids)
	}

	// Stable output, and callers cannot corrupt the cached document.
	doc[0] = 'X'
	doc2, _ := kr.JWKS()
	doc3, _ := kr.JWKS()
	if !bytes.Equal(doc2, doc3) || doc2[0] != '{' {
		t.Error("JWKS output not stable")
	}
}
