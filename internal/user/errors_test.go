package user_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// An unreachable database met under any operation stays a retryable 503
// (the e2e database-cut test saw "check revocation" turn it into a 500).
func TestInternalKeepsDatabaseUnavailable(t *testing.T) {
	err := user.Internal("check revocation", fmt.Errorf("revocation list: %w", user.ErrDatabaseUnavailable))
	if err.Code != user.CodeUnavailable || !errors.Is(err, user.ErrDatabaseUnavailable) {
		t.Fatalf("Internal of an unavailable database: %v (code %s), want ErrDatabaseUnavailable", err, err.Code)
	}
	if got := user.Internal("x", errors.New("boom")); got.Code != user.CodeInternal {
		t.Fatalf("Internal of another failure: code %s, want internal", got.Code)
	}
}
