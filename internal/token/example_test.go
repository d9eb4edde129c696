package token_test

import (
	"context"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/internal/token"
)

// An access token is issued for a user's session and parsed back into its
// claims; the same keyring's public half is what the JWKS publishes.
func ExampleManager() {
	key, err := token.GenerateKey()
	if err != nil {
		panic(err)
	}
	keys, err := token.NewKeyring(key)
	if err != nil {
		panic(err)
	}
	m, err := token.NewManager(keys, token.Config{Issuer: "https://accounts.example.com", Audience: "usersvc", TTL: 15 * time.Minute})
	if err != nil {
		panic(err)
	}
	tok, _, err := m.Issue(context.Background(), "user-42", "user", 1, "session-7", true, token.SignIn{})
	if err != nil {
		panic(err)
	}
	c, err := m.Parse(tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Subject, c.Role, c.SessionID, c.EmailVerified)
	_, err = m.Parse(tok + "x")
	fmt.Println(err != nil)
	// Output:
	// user-42 user session-7 true
	// true
}

// Refresh and reset tokens are opaque: the caller hands out the plain
// value and stores only its hash, which is what a later lookup hashes
// again to find.
func ExampleNewOpaque() {
	plain, hash, err := token.NewOpaque()
	if err != nil {
		panic(err)
	}
	fmt.Println(token.HashOpaque(plain) == hash, plain != hash)
	// Output: true true
}
