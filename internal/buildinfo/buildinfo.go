// Package buildinfo holds what a release build stamps into the binary with
// the linker (the Dockerfile does, whose build context has no .git):
//
//	go build -ldflags "-X github.com/usersvc/usersvc/internal/buildinfo.Version=1.2.3 \
//	  -X github.com/usersvc/usersvc/internal/buildinfo.Commit=$(git rev-parse HEAD)"
//
// Without -X, a binary built in a git checkout (`make build`, `go build`,
// `go install`) still names its commit: the Go toolchain records it
// (vcs.revision), and Commit falls back to it. `go run` records none.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X; variables, not constants, for that reason.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line answer of `usersvc version`.
func String() string {
	return fmt.Sprintf("usersvc %s (commit %s, %s %s/%s)", Version, commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// commit is Commit, or the toolchain's record of the checkout the binary
// was built in ("+dirty" when it had uncommitted changes).
func commit() string {
	if Commit != "unknown" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Commit
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return Commit
	case dirty:
		return rev + "+dirty"
	}
	return rev
}
