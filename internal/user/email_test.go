package user_test

import (
	"context"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// Addresses that look like a registered one must either be that account or
// be refused: never a second account that a victim cannot tell apart.
func TestLookAlikeEmails(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, addr := range []string{"alice@example.com", "caf\u00e9@example.com", "carol@example.com", "bob@b\u00fccher.example"} {
		e.create(t, addr, user.RoleUser)
	}
	cases := []struct {
		name, email string
		code        user.Code
	}{
		{"Cyrillic а among Latin letters", "\u0430lice@example.com", user.CodeInvalidArgument},
		{"Greek ο among Latin letters", "car\u03bfl@example.com", user.CodeInvalidArgument},
		{"full-width ｃ", "\uff43arol@example.com", user.CodeAlreadyExists},
		{"zero-width space", "ali\u200bce@example.com", user.CodeInvalidArgument},
		{"zero-width joiner", "ali\u200dce@example.com", user.CodeInvalidArgument},
		{"soft hyphen", "ali\u00adce@example.com", user.CodeInvalidArgument},
		{"combining acute accent", "cafe\u0301@example.com", user.CodeAlreadyExists},
		{"full-width dot in the domain", "alice@example\uff0ecom", user.CodeAlreadyExists},
		{"ideographic full stop in the domain", "alice@example\u3002com", user.CodeAlreadyExists},
		{"upper case", "ALICE@EXAMPLE.COM", user.CodeAlreadyExists},
		{"punycode of a registered domain", "bob@xn--bcher-kva.example", user.CodeAlreadyExists},
		{"replacement character", "ali\ufffdce@example.com", user.CodeInvalidArgument},
		{"invalid UTF-8", "ali\xffce@example.com", user.CodeInvalidArgument},
	}
	for _, c := range cases {
		_, err := e.svc.Create(ctx, user.SystemActor, user.CreateInput{Email: c.email, Password: strongPW, Name: "Mallory"})
		if got := user.CodeOf(err); got != c.code {
			t.Errorf("%s (%q): %v, want %s", c.name, c.email, err, c.code)
		}
		if c.code == user.CodeInvalidArgument {
			if ue := user.AsError(err); ue.Fields["email"] == "" {
				t.Errorf("%s: email not named in %v", c.name, err)
			}
		}
	}
	// The folded forms are the same account for signing in, too.
	if s, err := e.svc.Auth(ctx, "\uff43arol@example\uff0ecom", strongPW); err != nil || s.User.Email != "carol@example.com" {
		t.Errorf("sign-in with full-width letters: %v", err)
	}
	// Scripts of their own, and the mixes a language needs, are addresses.
	for _, addr := range []string{"\u0438\u0432\u0430\u043d@example.com", "\u5c71\u7530\u305f\u308d\u3046@example.jp",
		"o'brien+tag@example.com", "user.name-1_x@sub.example.co.uk"} {
		u, err := e.svc.Create(ctx, user.SystemActor, user.CreateInput{Email: addr, Password: strongPW, Name: "Someone"})
		if err != nil {
			t.Errorf("%q refused: %v", addr, err)
			continue
		}
		if u.Email != addr {
			t.Errorf("%q stored as %q", addr, u.Email)
		}
	}
}
