package userclient_test

import (
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/userclient"
)

// BenchmarkVerify compares what a service pays to trust a user's token:
// the SDK's local check (cached: the same token again, as every request
// of a session sends it; cold: the Ed25519 signature every time) against
// the Validate RPC to the real service (SQLite store, in-process gRPC over
// loopback — the cheapest a round trip gets).
func BenchmarkVerify(b *testing.B) {
	w := newWorld(b)
	ctx := b.Context()
	s, err := w.st.Service.Auth(ctx, "ann@example.com", "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	tok := s.AccessToken
	users := userclient.New(w.client())
	for _, c := range []struct {
		name  string
		cache int
	}{{"local-cached", 0}, {"local-cold", -1}} {
		v, err := auth.NewVerifier(auth.Config{Keys: users.KeySource(), Issuer: stack.Issuer, Audience: stack.Audience,
			CacheSize: c.cache, Revocations: auth.NewRevocationSet(nil)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("validate-rpc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := users.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
