// Package observe starts the observability servers the end-to-end suites
// check the processes against — Jaeger, Prometheus, Alertmanager,
// VictoriaLogs — as real processes on free loopback ports, with the
// project's own configuration files from deploy/. Each binary comes from a
// USERSVC_TEST_*_BIN variable (scripts/test.sh sets them, building Jaeger
// and VictoriaLogs once with scripts/opstools.sh); without it the test
// skips, or fails under USERSVC_TEST_REQUIRE_ALL=1.
package observe

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// RepoRoot is the repository's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// server is one started tool process.
type server struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
}

// start runs bin with args and env in a new temporary directory; the
// process is killed when the test ends, and its log shown if the test
// failed.
func start(t testing.TB, name, bin string, args []string, env []string) *server {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &server{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, s.tail())
		}
	})
	return s
}

func (s *server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// waitOK polls url until it answers 2xx.
func (s *server) waitOK(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode/100 == 2 {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("%s exited before %s answered; log:\n%s", s.name, url, s.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 2xx within %s (last: %v); log:\n%s", s.name, url, timeout, err, s.tail())
		}
	}
}

// freeAddrs returns n free loopback addresses.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = testenv.FreeAddr(t)
	}
	return out
}

// binary is the tool named by env (an absolute path or a name on PATH).
func binary(t testing.TB, env string) string {
	t.Helper()
	v := testenv.Need(t, env)
	p, err := exec.LookPath(v)
	if err != nil {
		t.Fatalf("%s=%s: %v", env, v, err)
	}
	return p
}

func envs(kv map[string]string) []string {
	out := make([]string, 0, len(kv))
	for k, v := range kv {
		out = append(out, k+"="+v)
	}
	return out
}
