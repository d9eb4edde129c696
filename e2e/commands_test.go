package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
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

// TestTwoDevsOnOneMachine: a second `usersvc dev` with its own HTTP
// address and data directory runs beside the first on their defaults
// otherwise (the ops listener's fixed port made it die).
func TestTwoDevsOnOneMachine(t *testing.T) {
	first, _ := cluster.StartDev(t, nil)
	second, url := cluster.StartDev(t, nil) // fails the test unless it serves
	if first.OpsAddr() == "" || first.OpsAddr() == second.OpsAddr() {
		t.Errorf("ops listeners %q and %q, want two", first.OpsAddr(), second.OpsAddr())
	}
	res, err := http.Get(url + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("second dev /healthz: %v %v", res, err)
	}
	res.Body.Close()
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
	register(apiclient.New(t, url), "drain@example.com", "Drain")
	load := startLogins(url, "drain@example.com", 6, true)
	load.waitStarted()                 // every client has had an answer and sent again
	if err := dev.Stop(); err != nil { // SIGTERM, then wait for the exit
		t.Error(err)
	}
	if ok, _, failures := load.end(t); len(failures) > 0 || ok == 0 {
		t.Errorf("%d accepted logins were not answered with 200: %v", len(failures), failures)
	}
}

// RSSCeilingMiB is the documented ceiling (docs/benchmarks.md) of usersvc
// dev's peak resident memory under a burst of 200 concurrent logins with
// the default argon2id cost (19 MiB per hash) and 2 hashes at once.
const RSSCeilingMiB = 320

// TestLoginBurstMemoryBounded: 200 concurrent logins at the default argon2id
// cost. Every one is answered 200 or, when the hash queue is full or its
// wait runs out, 503 with Retry-After; and the process's peak RSS stays
// under RSSCeilingMiB (unbounded, each hash in flight held 19 MiB and a
// burst like this took gigabytes).
func TestLoginBurstMemoryBounded(t *testing.T) {
	dev, url := cluster.StartDev(t, map[string]string{"USERSVC_ARGON2_MEMORY_KIB": "19456",
		"USERSVC_ARGON2_ITERATIONS": "2", "USERSVC_HASH_CONCURRENCY": "2"})
	cl := apiclient.New(t, url)
	register(cl, "burst@example.com", "Burst")
	body := `{"email":"burst@example.com","password":"` + userPassword + `"}`
	const n = 200
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		statuses        = map[int]int{}
		noRetryAfter    int
		transportErrors []string
	)
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}}
	release := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-release
			resp, err := hc.Post(url+"/user/token", "application/json", strings.NewReader(body))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				transportErrors = append(transportErrors, err.Error())
				return
			}
			resp.Body.Close()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				noRetryAfter++
			}
		})
	}
	start := time.Now()
	close(release)
	wg.Wait()
	took := time.Since(start)
	peak := peakRSSMiB(t, dev.Pid())
	t.Logf("%d concurrent logins in %v: statuses %v; peak RSS %d MiB (ceiling %d)", n, took, statuses, peak, RSSCeilingMiB)
	if len(transportErrors) > 0 {
		t.Errorf("%d requests failed in transport: %v", len(transportErrors), transportErrors[:min(3, len(transportErrors))])
	}
	if statuses[200] < 2 || statuses[200]+statuses[503] != n {
		t.Errorf("statuses %v: want only 200 and 503, and some 200", statuses)
	}
	if noRetryAfter > 0 {
		t.Errorf("%d 503 answers without Retry-After", noRetryAfter)
	}
	if peak > RSSCeilingMiB {
		t.Errorf("peak RSS %d MiB over the ceiling of %d MiB", peak, RSSCeilingMiB)
	}
}

// peakRSSMiB reads the process's peak resident set size (VmHWM).
func peakRSSMiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return kib / 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
