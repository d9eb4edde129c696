package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
)

// TestPortSpendsTheSignUpBudget: in a distributed deployment, a caller
// that goes straight to a service's gRPC port (here from 127.0.0.2) is
// limited per address like a client of the API, while the API instances
// (127.0.0.1, the service's USERSVC_TRUSTED_PROXIES) are not counted again.
func TestPortSpendsTheSignUpBudget(t *testing.T) {
	c := startCluster(t, map[string]string{"USERSVC_RATE_REGISTER_IP": "2/1m", "USERSVC_TRUSTED_PROXIES": "127.0.0.1/32"})
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	conn, err := grpc.NewClient(c.Services()[0].Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var got []codes.Code
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := conn.Invoke(ctx, "/user.v1.User/Create", &userv1.CreateRequest{Email: fmt.Sprintf("port%d@example.com", i),
			Password: "correct horse battery staple", Name: "P"}, &userv1.CreateResponse{})
		cancel()
		got = append(got, status.Code(err))
	}
	if got[0] != codes.OK || got[1] != codes.OK || got[2] != codes.ResourceExhausted {
		t.Fatalf("three sign-ups straight at the port: %v, want OK OK ResourceExhausted", got)
	}
}
