// Package buildinfo holds what a release build stamps into the binary with
// the linker (the Dockerfile does):
//
//	go build -ldflags "-X github.com/usersvc/usersvc/internal/buildinfo.Version=1.2.3 \
//	  -X github.com/usersvc/usersvc/internal/buildinfo.Commit=$(git rev-parse HEAD)"
//
// A plain `go build` or `go run` leaves the defaults.
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set by -ldflags -X; variables, not constants, for that reason.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line answer of `usersvc version`.
func String() string {
	return fmt.Sprintf("usersvc %s (commit %s, %s %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
