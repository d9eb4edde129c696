package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// slowLogins are the settings that make a login slow: the production
// argon2id cost (19 MiB, 2 passes), so that SIGTERM finds logins in
// flight. The hash queue's wait and the RPC timeout are raised out of the
// way: on a loaded 2-core machine a login waits its turn for a while, and
// a 503 for a full queue is not what these tests are about.
var slowLogins = map[string]string{
	"USERSVC_ARGON2_MEMORY_KIB": "19456", "USERSVC_ARGON2_ITERATIONS": "2",
	"USERSVC_HASH_QUEUE_WAIT": "60s", "USERSVC_RPC_TIMEOUT": "60s",
}

// loginLoad is a few clients signing in through a URL, each on until it is
// told to stop or its connection is refused (the server is gone: that
// request was never accepted). It counts how every request ended.
type loginLoad struct {
	url, body   string
	serverStops bool
	stop        chan struct{}
	wg          sync.WaitGroup

	mu          sync.Mutex
	ok          int      // answered 200
	unaccepted  int      // reset or closed before the server read it (see TestDevDrainsLoginsOnSIGTERM)
	failures    []string // any other answer or transport error
	answered    []int    // per client, requests answered or failed
	firstRounds sync.WaitGroup
}

// startLogins starts clients clients signing in as email with
// userPassword. serverStops says the server at url is the one to be
// stopped: then each request has a connection of its own (a kept-alive one
// would be closed by the draining server between requests, which a client
// retries and is not what a drain test is about), a refused connection
// ends the client, and one reset before the server read the request is
// counted apart. Otherwise connections are kept alive and every error is a
// failure.
func startLogins(url, email string, clients int, serverStops bool) *loginLoad {
	l := &loginLoad{url: url, body: `{"email":"` + email + `","password":"` + userPassword + `"}`,
		serverStops: serverStops, stop: make(chan struct{}), answered: make([]int, clients)}
	l.firstRounds.Add(clients)
	for i := range clients {
		l.wg.Go(func() { l.client(i) })
	}
	return l
}

func (l *loginLoad) client(i int) {
	hc := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{DisableKeepAlives: l.serverStops}}
	defer hc.CloseIdleConnections()
	for n := 0; ; n++ {
		if n == 1 {
			l.firstRounds.Done() // answered once and sending again
		}
		resp, err := hc.Post(l.url+"/user/token", "application/json", strings.NewReader(l.body))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		l.mu.Lock()
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED) && l.serverStops:
		case err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && l.serverStops:
			l.unaccepted++
		case err != nil:
			l.failures = append(l.failures, err.Error())
		case resp.StatusCode == http.StatusOK:
			l.ok++
		default:
			l.failures = append(l.failures, resp.Status)
		}
		l.answered[i]++
		l.mu.Unlock()
		if n == 0 && err != nil {
			l.firstRounds.Done()
		}
		if err != nil {
			return
		}
		select {
		case <-l.stop:
			return
		default:
		}
	}
}

// waitStarted waits until every client has had an answer and sent again,
// so that requests are in flight.
func (l *loginLoad) waitStarted() { l.firstRounds.Wait() }

// rounds is the least number of requests a client has finished.
func (l *loginLoad) rounds() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	least := l.answered[0]
	for _, n := range l.answered {
		least = min(least, n)
	}
	return least
}

// end stops the clients once their request in flight is answered, and
// reports the counts.
func (l *loginLoad) end(t *testing.T) (ok, unaccepted int, failures []string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%d logins answered 200, %d reset in the listen queue, %d failed", l.ok, l.unaccepted, len(l.failures))
	return l.ok, l.unaccepted, l.failures
}

// TestDistributedDrainsOnSIGTERM: SIGTERM to one process of each
// distributed role in turn — API, service, worker, and at last the only
// gateway — while logins at the production argon2id cost (or, for the
// worker, reset mails) are in flight. Every request the gateway accepted
// is answered 200 (no 502 from an internal hop cut under it, no reset
// connection); the process exits with status 0 within the cluster's stop
// timeout (USERSVC_SHUTDOWN_TIMEOUT is 5s there); and every reset mail is
// delivered once, whether its event was in the stopped worker's hands or
// still on the queue. The gateway keeps the other API and service in
// rotation, so their clients go on after the stop and must not notice.
func TestDistributedDrainsOnSIGTERM(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	dsn := testenv.MySQLDSN(t)
	etcd := etcdtest.StartEtcd(t)
	env := map[string]string{"USERSVC_RABBITMQ_URL": amqpURL, "USERSVC_NAMESPACE": testNamespace(t, amqpURL)}
	for k, v := range slowLogins {
		env[k] = v
	}
	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 2, Workers: 2, MySQLDSN: dsn, Etcd: etcd, Env: env})
	cl := apiclient.New(t, c.GatewayURL())
	register(cl, "drain@example.com", "Drain")

	// One process of a role that has another: its clients go on through
	// the gateway and must not see the stop.
	for _, p := range []*cluster.Proc{c.APIs()[0], c.Services()[0]} {
		t.Run(p.Role(), func(t *testing.T) {
			load := startLogins(c.GatewayURL(), "drain@example.com", 6, false)
			load.waitStarted()
			stopAndLog(t, p)
			// Two more rounds after the process is gone: the survivors
			// take the requests that would have gone to it.
			after := load.rounds() + 2
			testenv.Eventually(t, 2*time.Minute, "two more rounds of logins", func() bool { return load.rounds() >= after })
			ok, unaccepted, failures := load.end(t)
			if len(failures) > 0 || unaccepted > 0 || ok == 0 {
				t.Errorf("SIGTERM to %s: %d logins answered 200, %d reset, %d failed: %v", p.Name(), ok, unaccepted, len(failures), failures)
			}
		})
	}
	t.Run("worker", func(t *testing.T) { drainWorker(t, c, cl) })
	t.Run("gateway", func(t *testing.T) {
		load := startLogins(c.GatewayURL(), "drain@example.com", 6, true)
		load.waitStarted()
		stopAndLog(t, c.Gateway())
		ok, _, failures := load.end(t)
		if len(failures) > 0 || ok == 0 {
			t.Errorf("SIGTERM to the gateway: %d logins answered 200, %d failed: %v", ok, len(failures), failures)
		}
	})
}

// drainWorker requests reset mails for several users, four at a time,
// and SIGTERMs one of the two workers once it has sent one, while the rest
// are queued or in its hands. Each user gets exactly one mail: an event the
// stopped worker had taken is finished (and acknowledged) or goes back on
// the queue for the other worker, and none is sent twice.
func drainWorker(t *testing.T, c *cluster.Cluster, cl *apiclient.Client) {
	const users = 24
	emails := make([]string, users)
	for i := range emails {
		emails[i] = fmt.Sprintf("drain-reset%02d@example.com", i)
		cl.Do("POST", "/user", "", map[string]any{"email": emails[i], "password": userPassword, "name": "Reset"}).WantStatus(201)
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for range 4 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < users; i = next.Add(1) - 1 {
				r, err := cl.Try(context.Background(), apiclient.Request{Method: "POST", Path: "/user/password", Header: apiclient.JSONHeader(""),
					Body: []byte(`{"email":"` + emails[i] + `"}`)})
				mu.Lock()
				if err != nil {
					statuses[0]++
				} else {
					statuses[r.Status]++
				}
				mu.Unlock()
			}
		})
	}
	w := c.Workers()[0]
	testenv.Eventually(t, time.Minute, w.Name()+" sending a reset mail", func() bool { return w.LogsContain(`"message":"reset mail sent"`) })
	stopAndLog(t, w)
	wg.Wait()
	if statuses[202] != users {
		t.Fatalf("reset requests: statuses %v, want %d × 202", statuses, users)
	}
	count := func() map[string]int {
		n := map[string]int{}
		for _, m := range mailsWith(t, c.MailDir(), resetSubject) {
			for _, e := range emails {
				if strings.Contains(m.Header.Get("To"), e) {
					n[e]++
				}
			}
		}
		return n
	}
	testenv.Eventually(t, time.Minute, "a reset mail to every user", func() bool { return len(count()) == users })
	for e, n := range count() {
		if n != 1 {
			t.Errorf("%d reset mails to %s, want 1", n, e)
		}
	}
	t.Logf("%s sent %d of the %d reset mails, the other worker the rest", w.Name(), strings.Count(w.Logs(), `"reset mail sent"`), users)
}

// stopAndLog stops p (SIGTERM; Stop fails unless it exits with status 0
// within cluster.StopTimeout) and logs how long its drain took.
func stopAndLog(t *testing.T, p *cluster.Proc) {
	t.Helper()
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
	t.Logf("%s exited %v after SIGTERM", p.Name(), time.Since(start).Round(time.Millisecond))
}
