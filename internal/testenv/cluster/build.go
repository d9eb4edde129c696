package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// BinaryEnv names an environment variable that, when set, is the path of a
// usersvc binary to run instead of building one: a release artifact, or a
// binary built with -race or -cover by hand.
const BinaryEnv = "USERSVC_E2E_BINARY"

var build struct {
	mu  sync.Mutex
	dir string // temp dir holding the binary; "" when BinaryEnv was used
	bin string // "" until built (again, after RemoveBuild)
}

// Build returns the path of a usersvc binary built from this module's
// ./cmd/usersvc (or the one named by USERSVC_E2E_BINARY). It builds once
// per process (until RemoveBuild): every test of a package, and every
// cluster of a load program, runs the same binary, and the go build cache
// makes even the first build cheap when nothing changed.
//
// The binary lives in a temporary directory that outlives the calling
// test, because later tests reuse it; call RemoveBuild when the process is
// done with it (TestMain, or the end of a program's main).
//
// The binary is built without the race detector even under `go test
// -race`: the processes are black boxes here, and a race-instrumented
// cluster would be several times slower for no extra check of the tests.
func Build(t TB) string {
	t.Helper()
	bin, err := built()
	if err != nil {
		// Not remembered: a later test may try again.
		t.Fatalf("cluster: build usersvc: %v", err)
	}
	return bin
}

// built returns the binary, building it first if need be. (Build fails
// the test only after the lock is released: a Program's Fatalf runs the
// cleanups, which take it too.)
func built() (string, error) {
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.bin == "" {
		bin, dir, err := buildBinary()
		if err != nil {
			return "", err
		}
		build.bin, build.dir = bin, dir
	}
	return build.bin, nil
}

// buildBinary builds (or finds) the binary; dir is the temp dir to remove.
func buildBinary() (bin, dir string, err error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", "", fmt.Errorf("%s: %w", BinaryEnv, err)
		}
		return bin, "", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "usersvc-e2e-bin-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "usersvc")
	// -tags nomsgpack as in the release build (Makefile, Dockerfile): the
	// tests run the HTTP stack that ships.
	cmd := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, "./cmd/usersvc")
	cmd.Dir = root
	// GOFLAGS from the caller's environment (say -race, exported for the
	// tests) would apply to this build too; it is meant to be the plain
	// production build.
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/usersvc in %s: %v\n%s", root, err, out)
	}
	return bin, dir, nil
}

// RemoveBuild deletes the binary Build made (not one named by
// USERSVC_E2E_BINARY). Call it once no process runs it any more; a later
// Build builds again.
func RemoveBuild() {
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	build.bin, build.dir = "", ""
}

// moduleRoot finds the directory of this module's go.mod: first from this
// source file's path (which works from any working directory, e.g. a load
// program run from elsewhere), then, for binaries built with -trimpath,
// from the working directory upwards.
func moduleRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				strings.Contains(string(b), "module github.com/usersvc/usersvc\n") {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the module root (go.mod of github.com/usersvc/usersvc); set " + BinaryEnv)
}
