package revocations_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/revocations"
)

// noCatchUp stands in for userclient.Client, whose RevocationsSince asks
// the user service.
type noCatchUp struct{}

func (noCatchUp) RevocationsSince(context.Context, time.Time) ([]auth.Revocation, error) {
	return nil, nil
}

// A Feed fails closed until it is live: give it to the verifier, run it,
// and serve /readyz from Ready.
func ExampleFeed() {
	feed, err := revocations.New(revocations.Config{
		URL:     "amqp://guest:guest@127.0.0.1:5672/",
		CatchUp: noCatchUp{}, // in a service: a userclient.Client signed by a service account
	})
	if err != nil {
		panic(err)
	}
	// In a service: go feed.Run(ctx), and auth.Config{Revocations: feed}.
	err = feed.Check(&auth.Principal{Kind: auth.KindUser, ID: "u-1", TokenID: "j-1"})
	fmt.Println(errors.Is(err, auth.ErrUnavailable), auth.Status(err))
	// Output:
	// true 503
}
