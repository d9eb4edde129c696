package deploytest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/config"
)

// root is the repository root (this module lives in deploy/deploytest).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "usersvc")); err != nil {
		t.Fatalf("repository root not at %s: %v", dir, err)
	}
	return dir
}

// knownSettings are the USERSVC_* variables the binary reads: the
// configuration table of internal/config, plus USERSVC_CONFIG (the file).
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"USERSVC_CONFIG": true}
	for _, m := range regexp.MustCompile("`(USERSVC_[A-Z0-9_]+)`").FindAllStringSubmatch(config.Usage(), -1) {
		known[m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("the config table lists only %d settings; the format of config.Usage changed", len(known))
	}
	return known
}

// KubectlEnv names the kubectl to use (scripts/test.sh sets it to the one
// scripts/opstools.sh builds at the kube-apiserver's version); without it,
// the kubectl on PATH.
const KubectlEnv = "USERSVC_TEST_KUBECTL"

// kubectl is the kubectl binary the tests run.
func kubectl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(KubectlEnv); p != "" {
		return p
	}
	return tool(t, "kubectl")
}

// tool finds a command-line tool the test needs, failing (not skipping)
// without it: scripts/test.sh provides them.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: %v (scripts/services.sh installs it)", name, err)
	}
	return p
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// firstLines is the start of a document, for error messages.
func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
