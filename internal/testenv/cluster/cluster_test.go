package cluster

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuild()
	os.Exit(code)
}

// The end-to-end tests rely on the process life cycle to tell a clean
// shutdown from a crash; these check it on the cheapest process there is.

func TestStopIsClean(t *testing.T) {
	p, url := StartDev(t, nil)
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if !p.LogsContain(`"message":"usersvc dev mode"`) {
		t.Errorf("log lacks the start message:\n%s", p.Logs())
	}
}

func TestKillIsNotReported(t *testing.T) {
	p, _ := StartDev(t, nil)
	if err := p.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop after kill: %v", err)
	}
}

func TestCrashIsReportedOnce(t *testing.T) {
	p, _ := StartDev(t, nil)
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "exited on its own") {
		t.Fatalf("stop after a crash: %v, want it reported", err)
	}
	// The cleanup's Stop returns nil now: the test has seen the crash.
	if err := p.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestRestartKeepsDataDir(t *testing.T) {
	p, _ := StartDev(t, nil)
	id := p.Admin(t, "root@example.com", "correct horse battery staple")
	if len(id) != 36 {
		t.Errorf("admin create printed %q, want a UUID", id)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p2, _ := StartDev(t, map[string]string{"USERSVC_DATA_DIR": p.Getenv("USERSVC_DATA_DIR")})
	for _, k := range []string{"USERSVC_DATA_DIR", "USERSVC_MAIL_DIR", "USERSVC_JWT_KEYS_DIR"} {
		if p2.Getenv(k) != p.Getenv(k) {
			t.Errorf("%s: %q after restart, was %q", k, p2.Getenv(k), p.Getenv(k))
		}
	}
	if p2.Addr() == "" || p2.Role() != "dev" {
		t.Errorf("addr %q role %q", p2.Addr(), p2.Role())
	}
}

func TestProgram(t *testing.T) {
	var out bytes.Buffer
	p := NewProgram(&out)
	var order []int
	p.Cleanup(func() { order = append(order, 1) })
	p.Cleanup(func() { order = append(order, 2) })
	dir := p.TempDir()
	p.Logf("hello %d", 1)
	if p.Failed() {
		t.Error("failed before Errorf")
	}
	p.Errorf("oops")
	if !p.Failed() {
		t.Error("not failed after Errorf")
	}
	p.Close()
	p.Close()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran in order %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s not removed: %v", dir, err)
	}
	if out.String() != "hello 1\noops\n" {
		t.Errorf("output %q", out.String())
	}
}
