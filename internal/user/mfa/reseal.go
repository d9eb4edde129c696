package mfa

import (
	"context"
	"fmt"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/seal"
)

// resealPage is how many factors Reseal reads at a time.
const resealPage = 500

// Reseal re-encrypts every factor secret not sealed under keys' current
// key: the step after a key rotation, after which the old key can be
// removed from the configuration. Each swap is conditional on the secret
// being unchanged, so a factor re-enrolled meanwhile is left as it is. It
// returns how many it re-encrypted; a secret that no configured key opens
// stops it with an error naming the factor (removing its key too early
// would make that factor unusable).
func Reseal(ctx context.Context, store factor.Store, keys *seal.Keyring) (int, error) {
	n, after := 0, ""
	for {
		page, err := store.AllFactors(ctx, after, resealPage)
		if err != nil {
			return n, fmt.Errorf("mfa: reseal: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, f := range page {
			resealed, changed, err := keys.Reseal(f.Secret, totpContext(f.ID))
			if err != nil {
				return n, fmt.Errorf("mfa: reseal factor %s: %w", f.ID, err)
			}
			if !changed {
				continue
			}
			ok, err := store.ResealFactor(ctx, f.ID, f.Secret, resealed)
			if err != nil {
				return n, fmt.Errorf("mfa: reseal factor %s: %w", f.ID, err)
			}
			if ok {
				n++
			}
		}
		after = page[len(page)-1].ID
	}
}
