package seal

import (
	"errors"
	"testing"
)

// FuzzOpen: no input makes Open panic or open to anything but a value
// really sealed under the key (only "secret" ever is, in context "c"; the
// seed is sealed anew in each fuzzing process, so it is not compared), and
// every error is one of the three kinds.
func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, "", testKey("k1", 1))
	good, _ := k.Seal([]byte("secret"), "c")
	for _, s := range []string{good, "", "v1.k1.", "v1.k2.AAAA", "v1..", "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, err := k.Open(s, "c")
		switch {
		case err == nil:
			if string(got) != "secret" {
				t.Fatalf("Open(%q) = %q without error", s, got)
			}
		case !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrOpen):
			t.Fatalf("Open(%q): unexpected error %v", s, err)
		}
	})
}

// FuzzParseKeys: whatever the configuration holds, ParseKeys returns keys
// of the right size with valid ids, or an error; never a panic.
func FuzzParseKeys(f *testing.F) {
	a, _ := NewKey()
	for _, s := range []string{"k1:" + a, "k1:" + a + ",k2:" + a, "", ",", "k1:", ":::", "k1:AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		if err != nil {
			return
		}
		for _, k := range keys {
			if ValidKeyID(k.ID) != nil || len(k.Key) != KeySize {
				t.Fatalf("ParseKeys(%q) gave %q with %d bytes", s, k.ID, len(k.Key))
			}
		}
		if len(keys) > 0 {
			if _, err := NewKeyring(keys, ""); err != nil {
				t.Fatalf("NewKeyring of parsed keys: %v", err)
			}
		}
	})
}
