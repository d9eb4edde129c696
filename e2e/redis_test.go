package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// privateRedis runs a redis-server of the test's own on a free port, so the
// test may stop and restart it without disturbing anything else.
type privateRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	testenv.Need(t, "USERSVC_TEST_REDIS_URL") // `make test` provides Redis (and so redis-server)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if out, err := r.cli("ping"); err == nil && strings.Contains(out, "PONG") {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("private redis-server on port %d did not come up", r.port)
		}
	}
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *privateRedis) cli(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(r.port)}, args...)...).CombinedOutput()
	return string(out), err
}

// TestRedisOutageDuringReads: reads go on through a Redis outage (served
// from MariaDB) without a single failed request, and once Redis is back the
// service caches users in it again.
func TestRedisOutageDuringReads(t *testing.T) {
	rd := startPrivateRedis(t)
	dsn := testenv.MySQLDSN(t)
	c := cluster.Start(t, cluster.Options{Services: 1, APIs: 1, MySQLDSN: dsn, Etcd: etcdtest.StartEtcd(t),
		Env: map[string]string{"USERSVC_REDIS_URL": rd.url()}})
	cl := apiclient.New(t, c.GatewayURL())
	u := register(cl, "cached@example.com", "Cached")
	key := "usersvc:user:" + u.ID

	var total, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := cl.Send("GET", "/user/"+u.ID, apiclient.Bearer(u.Access), "")
				total.Add(1)
				if r.Status != 200 {
					failed.Add(1)
					t.Logf("GET during the Redis outage test: %d %s", r.Status, r.Body)
				}
			}
		})
	}
	testenv.Eventually(t, 10*time.Second, "the user cached in Redis", func() bool { out, _ := rd.cli("exists", key); return strings.TrimSpace(out) == "1" })
	rd.stop()
	time.Sleep(2 * time.Second) // reads go on against the database
	before := total.Load()
	rd.start() // empty: the cache must fill again
	testenv.Eventually(t, 15*time.Second, "the user cached in Redis again", func() bool { out, _ := rd.cli("exists", key); return strings.TrimSpace(out) == "1" })
	close(stop)
	wg.Wait()
	t.Logf("%d reads (%d up to Redis' return), %d failed", total.Load(), before, failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d reads failed during the Redis outage", failed.Load(), total.Load())
	}
	if !c.Services()[0].LogsContain("cache unavailable") {
		t.Error("the service did not log the cache outage")
	}
}

// TestRateLimitSharedAcrossAPIs: the per-account login limit holds across
// two API instances (the gateway alternates between them) and two service
// instances (which enforce it), because the window lives in Redis.
func TestRateLimitSharedAcrossAPIs(t *testing.T) {
	rd := startPrivateRedis(t)
	dsn := testenv.MySQLDSN(t)
	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 2, MySQLDSN: dsn, Etcd: etcdtest.StartEtcd(t),
		Env: map[string]string{"USERSVC_REDIS_URL": rd.url(), "USERSVC_RATE_LOGIN_ACCOUNT": "3/1m"}})
	cl := apiclient.New(t, c.GatewayURL())
	statuses := make([]int, 8)
	for i := range statuses {
		statuses[i] = cl.Do("POST", "/user/token", "", map[string]any{"email": "victim@example.com", "password": "not the password"}).Status
	}
	want := []int{401, 401, 401, 429, 429, 429, 429, 429}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v: the limit is not shared by the two APIs", statuses, want)
	}
	for _, api := range c.APIs() {
		if !api.LogsContain(`"http.route":"/user/token"`) {
			t.Errorf("%s served no login: the gateway did not spread the attempts", api.Name())
		}
	}
}
