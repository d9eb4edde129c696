package token

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestVerifiedCacheKeepsExpiry checks a remembered token is still rejected
// once it expires, and that only the exact token string hits.
func TestVerifiedCacheKeepsExpiry(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m := mustManager(t, mustKeyring(t, fixedKey(1)), clock)
	tok, want, err := m.Issue(context.Background(), "user-1", "user", 3, "", false, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := m.Parse(tok)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse = %+v, %v; want %+v", got, err, want)
		}
	}
	if _, ok := m.verified.get(tok, now, 0); !ok {
		t.Fatal("verified token not remembered")
	}
	if _, err := m.Parse(tok + "x"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("altered token: %v", err)
	}
	now = want.ExpiresAt.Add(time.Second)
	if _, err := m.Parse(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired remembered token: %v", err)
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache(10)
	exp := Claims{ExpiresAt: time.Now().Add(time.Hour)}
	for i := range 25 {
		c.put(string(rune('a'+i)), exp)
	}
	if len(c.m) > 10 {
		t.Fatalf("cache holds %d entries, limit 10", len(c.m))
	}
}
