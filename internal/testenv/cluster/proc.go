package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/usersvc/usersvc/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timeouts of the process life cycle. They are generous for a loaded CI
// machine yet keep a broken start or stop from eating the test timeout.
const (
	// StartTimeout bounds the wait for a process to report that it serves.
	StartTimeout = 30 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL. The
	// processes get USERSVC_SHUTDOWN_TIMEOUT=5s, so a healthy one is done
	// well within it.
	StopTimeout = 10 * time.Second
	// runTimeout bounds one-shot commands (migrate, admin create, keys).
	runTimeout = 60 * time.Second
	// maxLogOnFailure caps how much of a process's log a failing test
	// prints: the end, where the failure usually is.
	maxLogOnFailure = 64 << 10
)

// Proc is one running `usersvc <role>` process. Its standard output and
// error go to a log file (see Logs), printed when the test fails.
type Proc struct {
	name    string // e.g. "api-1", unique within a cluster
	role    string // the usersvc subcommand
	addr    string // the address it listens on (HTTP or gRPC); "" if none
	env     map[string]string
	bin     string
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid after done

	mu    sync.Mutex
	ended bool // Stop or Kill was called
}

// Name is the process's name in logs and messages, e.g. "service-2".
func (p *Proc) Name() string { return p.name }

// Role is the usersvc subcommand the process runs.
func (p *Proc) Role() string { return p.role }

// Addr is the host:port the process listens on: the HTTP address of a
// gateway, api or dev process, the gRPC address of a service.
func (p *Proc) Addr() string { return p.addr }

// Getenv returns one of the USERSVC_* settings the process was started
// with ("" if unset).
func (p *Proc) Getenv(key string) string { return p.env[key] }

// Pid is the operating system's process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited, whoever ended it.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Logs returns everything the process wrote so far (JSON log lines).
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogsContain reports whether the process has logged s so far.
func (p *Proc) LogsContain(s string) bool {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Contains(b, []byte(s))
}

// Stop ends the process the way an orchestrator does: SIGTERM, then
// SIGKILL if it has not exited after StopTimeout. It returns an error when
// the process did not exit with status 0 in time, or had already exited
// without being asked to — a crash the caller should report.
//
// The end of a process is reported once: after the first Stop or Kill,
// both return nil, so a cluster's cleanup does not report again what the
// test has seen. Stop is safe to call concurrently; every call returns
// once the process is gone.
func (p *Proc) Stop() error { return p.end(false, syscall.SIGTERM) }

// StopWith is Stop with another signal than SIGTERM (SIGINT: Ctrl-C).
func (p *Proc) StopWith(sig syscall.Signal) error { return p.end(false, sig) }

// Kill ends the process with SIGKILL, as a crash or an OOM kill would: no
// deregistration, no draining, connections reset. It waits until the
// process is gone. Like Stop it reports a process that had already exited
// on its own, once.
func (p *Proc) Kill() error { return p.end(true, syscall.SIGKILL) }

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

func (p *Proc) end(kill bool, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock() // concurrent callers wait for the first to finish
	if p.ended {
		<-p.done
		return nil
	}
	p.ended = true
	select {
	case <-p.done:
		return fmt.Errorf("%s exited on its own before it was stopped: %v", p.name, p.exitDesc())
	default:
	}
	if kill {
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.exitError("after " + signalName(sig))
	case <-time.After(StopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s of %s; killed it", p.name, StopTimeout, signalName(sig))
	}
}

func (p *Proc) exitError(when string) error {
	if p.err == nil {
		return nil
	}
	return fmt.Errorf("%s exited uncleanly %s: %v", p.name, when, p.err)
}

func (p *Proc) exitDesc() string {
	if p.err == nil {
		return "status 0"
	}
	return p.err.Error()
}

// Run runs another usersvc command (e.g. "admin", "create", "--email", …)
// with this process's settings, so it works on the same database, keys
// and mail directory. stdin is its standard input. It fails the test if
// the command fails, and returns its standard output.
func (p *Proc) Run(t TB, stdin string, args ...string) string {
	t.Helper()
	return run(t, p.bin, p.env, stdin, args...)
}

// Admin creates an administrator with `usersvc admin create`, the password
// on standard input as an operator would pipe it, on this process's
// database. It returns the new user's ID.
func (p *Proc) Admin(t TB, email, password string) string {
	t.Helper()
	return strings.TrimSpace(p.Run(t, password+"\n", "admin", "create", "--email", email))
}

// run runs one usersvc command to completion.
func run(t TB, bin string, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster: usersvc %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// childEnv is the environment of a child process: the caller's, without
// any USERSVC_* setting (a developer's shell must not change what the
// tests run), plus settings.
func childEnv(settings map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USERSVC_") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+settings[k])
	}
	return env
}

// portPlaceholder, in a setting's value, becomes the port the process
// listens on (its addrKey's), chosen at start: the dev mode's public URL
// must name it, and a WebAuthn relying party cannot be an IP address, so
// the browser tests reach it as http://localhost:{port}.
const portPlaceholder = "{port}"

// procSpec describes a process to start.
type procSpec struct {
	name, role string
	bin        string
	dir        string            // for the log file and the working directory
	env        map[string]string // settings, without the listen address
	addrKey    string            // setting of the listen address ("" = none); see portPlaceholder
	ready      string            // log message that says the process serves
}

// startProc starts spec's process on a free port and waits until it logs
// its ready message. Free ports are found by listening on port 0 and
// closing again (see freeAddr), so another process can take the port in
// between; a start that fails with "address already in use" is therefore
// retried on a new port, a few times.
func startProc(spec procSpec) (*Proc, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		env := make(map[string]string, len(spec.env)+1)
		for k, v := range spec.env {
			env[k] = v
		}
		addr := ""
		if spec.addrKey != "" {
			// Free a moment ago: startProc retries when another process
			// took it before the child could bind it.
			a, err := testenv.FindFreeAddr()
			if err != nil {
				return nil, err
			}
			addr, env[spec.addrKey] = a, a
			_, port, _ := net.SplitHostPort(a)
			for k, v := range env {
				// A setting that names the process's own port, as
				// USERSVC_PUBLIC_URL "http://localhost:{port}" does.
				env[k] = strings.ReplaceAll(v, portPlaceholder, port)
			}
		}
		p, err := launch(spec, env, addr, attempt)
		if err != nil {
			return nil, err
		}
		err = p.waitLog(spec.ready, StartTimeout)
		if err == nil {
			return p, nil
		}
		_ = p.Kill()
		lastErr = err
		if !p.LogsContain("address already in use") {
			break
		}
	}
	return nil, lastErr
}

// launch starts the process without waiting for it.
func launch(spec procSpec, env map[string]string, addr string, attempt int) (*Proc, error) {
	logPath := filepath.Join(spec.dir, fmt.Sprintf("%s.%d.log", spec.name, attempt))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(spec.bin, spec.role)
	cmd.Env = childEnv(env)
	cmd.Dir = spec.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	p := &Proc{name: spec.name, role: spec.role, addr: addr, env: env, bin: spec.bin, logPath: logPath,
		cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitLog waits until the process logs a line whose message is msg. It
// fails early, with the log, when the process exits first.
func (p *Proc) waitLog(msg string, timeout time.Duration) error {
	want := `"message":"` + msg + `"`
	deadline := time.Now().Add(timeout)
	for {
		if p.LogsContain(want) {
			return nil
		}
		select {
		case <-p.done:
			if p.LogsContain(want) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before it logged %q; its log:\n%s", p.name, p.exitDesc(), msg, p.tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s; its log:\n%s", p.name, msg, timeout, p.tail())
		}
	}
}

// tail is the end of the log, for failure messages.
func (p *Proc) tail() string {
	s := p.Logs()
	if len(s) > maxLogOnFailure {
		s = "…" + s[len(s)-maxLogOnFailure:]
	}
	return s
}

// waitHTTP polls url until it answers 200, for at most timeout. It fails
// early when p exits.
func waitHTTP(p *Proc, url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		res, err := hc.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) while waiting for GET %s; its log:\n%s", p.name, p.exitDesc(), url, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: no 200 within %s (last: %s)", url, timeout, last)
		}
	}
}

// stopAll stops procs concurrently and returns their errors joined.
func stopAll(procs []*Proc) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getOK sends GET url with the request ID and wants 200.
func getOK(url, requestID string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Request-ID", requestID)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
	return nil
}

// OpsAddr is the address of the process's ops listener (/healthz, /readyz,
// /metrics), read from the line it logs when it starts; "" until then.
func (p *Proc) OpsAddr() string {
	for _, line := range strings.Split(p.Logs(), "\n") {
		if !strings.Contains(line, `"message":"ops listener started"`) {
			continue
		}
		var m struct {
			Address string `json:"address"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Address != "" {
			return m.Address
		}
	}
	return ""
}

// LogPath is the file the process writes its log lines to.
func (p *Proc) LogPath() string { return p.logPath }
