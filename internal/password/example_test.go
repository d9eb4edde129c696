package password_test

import (
	"context"
	"fmt"

	"github.com/usersvc/usersvc/internal/password"
)

// A new password is checked against the policy (never at login), then
// hashed; a login verifies against the stored hash and learns whether it
// should be rehashed at the current cost.
func ExampleHasher() {
	policy := password.DefaultPolicy()
	fmt.Println(policy.Check("password1", "ann@example.com") != nil)

	p := password.DefaultParams()
	p.Memory, p.Iterations = 64, 1 // cheap for the example; DefaultParams are the production cost
	h, err := password.NewHasher(p)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	stored, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	ok, needsRehash, err := h.Verify(ctx, "correct horse battery staple", stored)
	fmt.Println(ok, needsRehash, err)
	ok, _, _ = h.Verify(ctx, "wrong", stored)
	fmt.Println(ok)
	// Output:
	// true
	// true false <nil>
	// false
}
