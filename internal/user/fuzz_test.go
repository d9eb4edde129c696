package user_test

import (
	"context"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// FuzzCreateInput: whatever a client sends as email, name and password,
// Create either succeeds or answers invalid_argument / already_exists —
// bad input is never an internal error — and what it stores is normalised.
func FuzzCreateInput(f *testing.F) {
	for _, s := range [][3]string{
		{"alice@example.com", "Alice", "correct horse battery staple"},
		{" ALICE@Example.COM ", " Alice ", "correct horse battery staple"},
		{"", "", ""},
		{"not-an-email", "x", "password"},
		{"a@b", "\x00name", "\xff\xfe"},
		{"a@example.com", "Ωmega 🎉", "a@example.com"},
		{"\"quoted\"@example.com", "N", "tr0ub4dor&3 horse"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, email, name, pw string) {
		u, err := e.svc.Create(context.Background(), user.Actor{}, user.CreateInput{Email: email, Name: name, Password: pw})
		if err != nil {
			if c := user.CodeOf(err); c != user.CodeInvalidArgument && c != user.CodeAlreadyExists {
				t.Fatalf("Create(%q, %q, %q): %v (code %s)", email, name, pw, err, c)
			}
			return
		}
		if u.Email != user.NormalizeEmail(email) || u.Name != user.NormalizeName(name) || u.PasswordHash == pw {
			t.Fatalf("stored %+v for %q / %q", u, email, name)
		}
	})
}
