package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v6/registry"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// outcome is one request of the failover load.
type outcome struct {
	worker int
	op     string
	start  time.Time
	took   time.Duration
	status int    // 0 on a transport error
	err    string // transport error or broken contract
}

func (o outcome) String() string {
	s := fmt.Sprintf("worker %d %s at %s took %s: %d", o.worker, o.op, o.start.Format("15:04:05.000"), o.took.Round(time.Millisecond), o.status)
	if o.err != "" {
		s += " (" + o.err + ")"
	}
	return s
}

// TestDistributedFailover crashes instances under load. A few clients
// keep reading their user and signing in through the gateway while one API
// and then one service process get SIGKILL — no deregistration, no
// draining, connections reset — as a crash or an OOM kill would.
//
// What must hold: once the registry has dropped the dead instances (their
// lease, cluster.RegistryTTL, plus 2s for the watchers to catch up), not
// one request fails. Before that, the only acceptable failure is the
// gateway's 502 for a request that was in flight on the killed API and
// cannot be replayed (a POST), and there may only be as many as there were
// requests in flight; the gateway retries refused connections on another
// instance and the API's RPC client skips unreachable service nodes, so
// new requests do not notice the crash at all.
func TestDistributedFailover(t *testing.T) {
	c := startCluster(t, nil)
	const (
		workers     = 4
		killAPIAt   = 3 * time.Second // after the load starts
		killSvcAt   = 4 * time.Second
		runFor      = 14 * time.Second      // ends 5s after both kills have settled
		maxRequests = 20000                 // a bound, should the machine be fast
		pause       = 10 * time.Millisecond // per client, between requests
	)
	settle := cluster.RegistryTTL + 2*time.Second

	// Each worker is a user of its own, signed in.
	setup := apiclient.New(t, c.GatewayURL())
	users := make([]account, workers)
	for i := range users {
		users[i] = register(setup, fmt.Sprintf("load%d@example.com", i), fmt.Sprintf("Load %d", i))
	}

	// Watch the registry for the killed service's lease to run out, and
	// the gateway's log for it dropping the killed API.
	reg := etcdRegistry(t, c.Services()[0].Getenv("USERSVC_ETCD_ENDPOINTS"))
	deadAPI, deadSvc := c.APIs()[0], c.Services()[0]

	var (
		mu       sync.Mutex
		outcomes []outcome
		sent     atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		u := users[w]
		cl := apiclient.New(t, c.GatewayURL())
		wg.Go(func() {
			var mine []outcome
			defer func() {
				mu.Lock()
				outcomes = append(outcomes, mine...)
				mu.Unlock()
			}()
			for n := 0; ctx.Err() == nil && sent.Add(1) <= maxRequests; n++ {
				var req apiclient.Request
				op := "GET /user/:id"
				if n%2 == 1 {
					op = "POST /user/token"
					req = apiclient.Request{Method: "POST", Path: "/user/token", Header: apiclient.JSONHeader(""), Valid: true,
						Body: []byte(`{"email":"` + u.Email + `","password":"` + userPassword + `"}`)}
				} else {
					req = apiclient.Request{Method: "GET", Path: "/user/" + u.ID, Header: apiclient.Bearer(u.Access), Valid: true}
				}
				// The requests run to the end even when the load stops, so
				// none is cut off and miscounted as a failure.
				start := time.Now()
				r, err := cl.Try(context.Background(), req)
				o := outcome{worker: w, op: op, start: start, took: time.Since(start)}
				switch {
				case err != nil:
					o.err = err.Error()
				case r.Status == http.StatusBadGateway:
					o.status = r.Status // not in the contract; judged below
					o.err = string(r.Body)
				default:
					o.status = r.Status
					if r.CheckErr != nil {
						o.err = r.CheckErr.Error()
					}
				}
				mine = append(mine, o)
				time.Sleep(pause)
			}
		})
	}

	sleepUntil(t0.Add(killAPIAt))
	apiKilled := time.Now()
	if err := deadAPI.Kill(); err != nil {
		t.Errorf("kill %s: %v", deadAPI.Name(), err)
	}
	sleepUntil(t0.Add(killSvcAt))
	svcKilled := time.Now()
	if err := deadSvc.Kill(); err != nil {
		t.Errorf("kill %s: %v", deadSvc.Name(), err)
	}
	settled := svcKilled.Add(settle)

	// The service's registration expires with its lease.
	var svcGone time.Time
	for svcGone.IsZero() && time.Now().Before(svcKilled.Add(2*settle)) {
		if n := nodes(reg, rpc.ServiceName); n == len(c.Services())-1 {
			svcGone = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()

	// The gateway dropped the API when its lease expired.
	apiGone := removalLogged(t, c.Gateway(), deadAPI.Addr())
	switch {
	case apiGone.IsZero():
		t.Errorf("the gateway never logged dropping %s (%s)", deadAPI.Name(), deadAPI.Addr())
	case apiGone.Sub(apiKilled) > settle:
		t.Errorf("the gateway dropped %s %s after it was killed, more than the registry TTL %s + 2s",
			deadAPI.Name(), apiGone.Sub(apiKilled), cluster.RegistryTTL)
	}
	switch {
	case svcGone.IsZero():
		t.Errorf("%s is still registered in etcd %s after it was killed", deadSvc.Name(), 2*settle)
	case svcGone.Sub(svcKilled) > settle:
		t.Errorf("%s left etcd %s after it was killed, more than the registry TTL %s + 2s",
			deadSvc.Name(), svcGone.Sub(svcKilled), cluster.RegistryTTL)
	}

	// Judge every request by when it started.
	slices.SortFunc(outcomes, func(a, b outcome) int { return a.start.Compare(b.start) })
	type phase struct {
		name     string
		n        int
		failures map[string]int
	}
	phases := []*phase{{name: "before the kills"}, {name: "until the registry settled"}, {name: "after it settled"}}
	var bad []outcome
	var slowest time.Duration
	for _, o := range outcomes {
		// In flight at a kill counts as disturbed; started once the
		// registry has settled counts as after.
		p := phases[1]
		switch {
		case o.start.Add(o.took).Before(apiKilled):
			p = phases[0]
		case !o.start.Before(settled):
			p = phases[2]
		}
		p.n++
		slowest = max(slowest, o.took)
		if o.status == http.StatusOK && o.err == "" {
			continue
		}
		if p.failures == nil {
			p.failures = map[string]int{}
		}
		key := fmt.Sprint(o.status)
		if o.status == 0 {
			key = "transport error"
		}
		p.failures[key]++
		if p != phases[1] || o.status != http.StatusBadGateway {
			bad = append(bad, o)
		} else {
			t.Logf("allowed while the registry caught up: %v", o)
		}
	}
	t.Logf("%d requests from %d clients in %s; %s killed at +%s, %s at +%s; removal seen after %s (gateway) and %s (etcd); settled at +%s; slowest request %s",
		len(outcomes), workers, runFor, deadAPI.Name(), apiKilled.Sub(t0).Round(time.Millisecond),
		deadSvc.Name(), svcKilled.Sub(t0).Round(time.Millisecond), sinceOrNever(apiGone, apiKilled),
		sinceOrNever(svcGone, svcKilled), settled.Sub(t0).Round(time.Millisecond), slowest.Round(time.Millisecond))
	for _, p := range phases {
		t.Logf("  %-27s %5d requests, failures %v", p.name+":", p.n, p.failures)
	}
	if phases[2].n < 50 {
		t.Errorf("only %d requests after the registry settled; the check needs more", phases[2].n)
	}
	if n := phases[1].failures["502"]; n > 2*workers {
		t.Errorf("%d requests failed with 502 while the registry caught up; at most the %d in flight at each kill may", n, workers)
	}
	for i, o := range bad {
		if i == 20 {
			t.Errorf("… and %d more", len(bad)-i)
			break
		}
		t.Errorf("request failed: %v", o)
	}
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

func sinceOrNever(at, since time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(since).Round(time.Millisecond).String()
}

// nodes is the number of registered nodes of service, -1 if the registry
// cannot be read.
func nodes(reg rpc.Registry, service string) int {
	svcs, err := reg.GetService(service)
	if errors.Is(err, registry.ErrNotFound) {
		return 0
	}
	if err != nil {
		return -1
	}
	n := 0
	for _, s := range svcs {
		n += len(s.Nodes)
	}
	return n
}

// removalLogged returns when the gateway logged an instance list without
// addr after having had it, or the zero time.
func removalLogged(t *testing.T, gw *cluster.Proc, addr string) time.Time {
	t.Helper()
	had := false
	for _, line := range strings.Split(gw.Logs(), "\n") {
		var e struct {
			Time      time.Time `json:"@timestamp"`
			Message   string    `json:"message"`
			Instances []string  `json:"upstream.instances"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Message != "gateway: instances changed" {
			continue
		}
		has := slices.Contains(e.Instances, addr)
		if had && !has {
			return e.Time
		}
		had = had || has
	}
	return time.Time{}
}
