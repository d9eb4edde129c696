package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// TestClientCannotChooseItsAddress: the per-IP login limit counts the real
// peer. Thirty logins from one address, each claiming another address in
// X-Forwarded-For (and each for another email, so the per-account limit
// stays out of it), are limited after the configured five: with nothing
// configured in USERSVC_TRUSTED_PROXIES the gateway is the edge and replaces
// what the client claims. (Before, every loopback and private peer was a
// trusted proxy and none of the thirty was ever limited.)
func TestClientCannotChooseItsAddress(t *testing.T) {
	_, url := cluster.StartDev(t, map[string]string{"USERSVC_RATE_LOGIN_IP": "5/1m", "USERSVC_RATE_LOGIN_ACCOUNT": "100/1m"})
	c := apiclient.New(t, url)
	limited := 0
	for i := range 30 {
		hdr := apiclient.JSONHeader("")
		hdr.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		body := fmt.Sprintf(`{"email":"nobody%d@example.com","password":"not the password"}`, i)
		switch st := c.Send("POST", "/user/token", hdr, body).Status; st {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("login %d: status %d", i, st)
		}
	}
	if limited != 25 {
		t.Fatalf("%d of 30 logins limited, want 25 (limit 5 per minute from the one real address)", limited)
	}
}
