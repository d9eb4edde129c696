package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// TestReindexWhileDevRuns: `usersvc reindex` on the data dir a running
// `usersvc dev` holds fails within a few seconds (it hung forever, ignoring
// SIGTERM) and names the holder's process ID.
func TestReindexWhileDevRuns(t *testing.T) {
	dev, _ := cluster.StartDev(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cluster.Build(t), "reindex")
	cmd.Env = append(os.Environ(), "USERSVC_DATA_DIR="+dev.Getenv("USERSVC_DATA_DIR"), "USERSVC_LOG_FORMAT=text")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("reindex while dev runs: %v, want exit status 1\n%s", err, stderr.String())
	}
	if want := fmt.Sprintf("pid %d", dev.Pid()); !strings.Contains(stderr.String(), want) {
		t.Errorf("reindex's error does not name the holder (%s):\n%s", want, stderr.String())
	}
	// One second of waiting for the lock plus the start-up of a process.
	if took > 5*time.Second {
		t.Errorf("reindex took %v to fail", took)
	}
	t.Logf("reindex failed after %v: %s", took, strings.TrimSpace(stderr.String()))
}

// TestDevEndsOnSIGINT: Ctrl-C ends usersvc dev cleanly (exit status 0),
// as SIGTERM does (every cluster test ends its processes with SIGTERM).
func TestDevEndsOnSIGINT(t *testing.T) {
	dev, _ := cluster.StartDev(t, nil)
	if err := dev.StopWith(syscall.SIGINT); err != nil {
		t.Error(err)
	}
}

// TestDevDrainsLoginsOnSIGTERM: SIGTERM to `usersvc dev` while logins (real
// argon2id cost, so each takes a while) keep arriving answers every one
// the gateway accepted with 200; none is cut with 502 at an internal hop
// (the API or service stopping under the gateway). Each client goes on
// sending until its connection is refused or closed before an answer:
// that request was never accepted, and the client stops there. (A
// connection the kernel completed but that still sat in the listen queue
// when the server closed its listener is reset: the server never saw the
// request, and the client cannot tell it from a refusal, so it is counted
// apart and logged, not as a failure.)
func TestDevDrainsLoginsOnSIGTERM(t *testing.T) {
	dev, url := cluster.StartDev(t, map[string]string{
		"USERSVC_ARGON2_MEMORY_KIB": "19456", "USERSVC_ARGON2_ITERATIONS": "2", "USERSVC_SHUTDOWN_TIMEOUT": "30s"})
	cl := newClient(t, url)
	register(cl, "drain@example.com", "Drain")
	body := `{"email":"drain@example.com","password":"` + userPassword + `"}`
	const clients = 6
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, unaccepted int
		failures       []string
	)
	first := make(chan struct{}, clients)
	for range clients {
		wg.Go(func() {
			// A connection per request: a kept-alive one would be closed by
			// the draining server between requests, which a client retries
			// and is not what this test is about.
			hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for i := 0; ; i++ {
				if i == 1 {
					first <- struct{}{}
				}
				resp, err := hc.Post(url+"/user/token", "application/json", strings.NewReader(body))
				mu.Lock()
				switch {
				case err != nil && errors.Is(err, syscall.ECONNREFUSED):
					mu.Unlock()
					return
				case err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
					unaccepted++
				case err != nil:
					failures = append(failures, err.Error())
				default:
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok++
					} else {
						failures = append(failures, resp.Status)
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	for range clients {
		<-first // every client has had an answer and sent again
	}
	stopped := make(chan error, 1)
	go func() { stopped <- dev.Stop() }() // SIGTERM, then wait for the exit
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Error(err)
	}
	t.Logf("%d logins answered 200, %d reset in the listen queue, %d failed", ok, unaccepted, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d accepted logins were not answered with 200: %v", len(failures), failures)
	}
}
