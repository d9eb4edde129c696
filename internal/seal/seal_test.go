package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func testKey(id string, fill byte) Key {
	return Key{ID: id, Key: bytes.Repeat([]byte{fill}, KeySize)}
}

func mustKeyring(t testing.TB, current string, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys, current)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKeyring(t, "", testKey("k1", 1))
	sealed, err := k.Seal([]byte("JBSWY3DPEHPK3PXP"), "totp:f1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1.k1.") || strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatalf("sealed = %q", sealed)
	}
	got, kid, err := k.Open(sealed, "totp:f1")
	if err != nil || string(got) != "JBSWY3DPEHPK3PXP" || kid != "k1" {
		t.Fatalf("Open = %q, %q, %v", got, kid, err)
	}
	again, _ := k.Seal([]byte("JBSWY3DPEHPK3PXP"), "totp:f1")
	if again == sealed {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
}

// TestContextBinds: a value copied to another row (another context) does
// not open there.
func TestContextBinds(t *testing.T) {
	k := mustKeyring(t, "", testKey("k1", 1))
	sealed, _ := k.Seal([]byte("secret"), "totp:f1")
	if _, _, err := k.Open(sealed, "totp:f2"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open in another context = %v, want ErrOpen", err)
	}
}

func TestTamperedRefused(t *testing.T) {
	k := mustKeyring(t, "", testKey("k1", 1))
	sealed, _ := k.Seal([]byte("secret"), "c")
	box, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1.k1."))
	for i := range box {
		alt := bytes.Clone(box)
		alt[i] ^= 0x80
		if _, _, err := k.Open("v1.k1."+base64.RawURLEncoding.EncodeToString(alt), "c"); !errors.Is(err, ErrOpen) {
			t.Fatalf("byte %d flipped: %v, want ErrOpen", i, err)
		}
	}
	for _, bad := range []string{"", "v1", "v1.k1", "v2.k1." + strings.TrimPrefix(sealed, "v1.k1."), "v1.k.1.AAAA",
		"v1.k1.AAAA", "v1.k1.!!!!", "v1..AAAA", sealed + "="} {
		if _, _, err := k.Open(bad, "c"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Open(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// TestRotation: after a new current key is configured beside the old one,
// old values open, new ones are sealed under the new key, and Reseal moves
// an old value over; once the old key is gone, only resealed values open.
func TestRotation(t *testing.T) {
	old := mustKeyring(t, "", testKey("2025", 1))
	sealedOld, _ := old.Seal([]byte("secret"), "c")

	both := mustKeyring(t, "2026", testKey("2025", 1), testKey("2026", 2))
	if got, kid, err := both.Open(sealedOld, "c"); err != nil || string(got) != "secret" || kid != "2025" {
		t.Fatalf("old value under the rotated keyring: %q %q %v", got, kid, err)
	}
	sealedNew, _ := both.Seal([]byte("other"), "c")
	if kid, _ := KeyID(sealedNew); kid != "2026" {
		t.Fatalf("new value sealed under %q, want the current key", kid)
	}
	resealed, changed, err := both.Reseal(sealedOld, "c")
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v", changed, err)
	}
	if same, changed, err := both.Reseal(resealed, "c"); err != nil || changed || same != resealed {
		t.Fatalf("Reseal of a current value changed it: %v %v", changed, err)
	}

	onlyNew := mustKeyring(t, "", testKey("2026", 2))
	if _, _, err := onlyNew.Open(sealedOld, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("value under a removed key: %v, want ErrUnknownKey", err)
	}
	if got, _, err := onlyNew.Open(resealed, "c"); err != nil || string(got) != "secret" {
		t.Errorf("resealed value: %q %v", got, err)
	}
}

// TestSameIDOtherKey: a key id reused for other key material does not
// open the old values (GCM authenticates), it reports them as not opening.
func TestSameIDOtherKey(t *testing.T) {
	sealed, _ := mustKeyring(t, "", testKey("k", 1)).Seal([]byte("s"), "c")
	if _, _, err := mustKeyring(t, "", testKey("k", 2)).Open(sealed, "c"); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open under other material = %v, want ErrOpen", err)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	cases := map[string]struct {
		keys    []Key
		current string
	}{
		"none":          {nil, ""},
		"short key":     {[]Key{{ID: "a", Key: make([]byte, 16)}}, ""},
		"bad id":        {[]Key{testKey("a.b", 1)}, ""},
		"empty id":      {[]Key{testKey("", 1)}, ""},
		"duplicate id":  {[]Key{testKey("a", 1), testKey("a", 2)}, ""},
		"current unset": {[]Key{testKey("a", 1)}, "b"},
	}
	for name, tc := range cases {
		if _, err := NewKeyring(tc.keys, tc.current); err == nil {
			t.Errorf("%s: NewKeyring accepted it", name)
		}
	}
}

func TestParseKeys(t *testing.T) {
	a, _ := NewKey()
	b := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize)) // has - and _
	keys, err := ParseKeys(" k1:" + a + " , k2:" + b + ",")
	if err != nil || len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k2" ||
		!bytes.Equal(keys[1].Key, bytes.Repeat([]byte{0xfb}, KeySize)) {
		t.Fatalf("ParseKeys = %v, %v", keys, err)
	}
	if keys, err := ParseKeys(""); err != nil || len(keys) != 0 {
		t.Errorf("ParseKeys(\"\") = %v, %v", keys, err)
	}
	for _, bad := range []string{"k1", "k1:", "k1:" + a[:20], "k.1:" + a, "k1:" + a + ",k1:" + a, ":" + a} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted it", bad)
		} else if strings.Contains(err.Error(), a) {
			t.Errorf("ParseKeys(%q) error shows the key: %v", bad, err)
		}
	}
}
