package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// readyURLs are the /readyz bases of every role: the gateway's and the
// APIs' main listeners, the services' ops listeners.
func readyURLs(c *cluster.Cluster) map[string]string {
	urls := map[string]string{"gateway": c.GatewayURL()}
	for _, p := range c.APIs() {
		urls[p.Name()] = "http://" + p.Addr()
	}
	for _, p := range c.Services() {
		urls[p.Name()] = "http://" + p.OpsAddr()
	}
	return urls
}

// etcdOutage is how long etcd stays unreachable: the 60s by
// default, past the 3s leases, the 5s registry timeout and go-micro's
// one-minute registry cache, so every lease runs out and every cached
// list would have expired. USERSVC_TEST_ETCD_OUTAGE sets another length.
func etcdOutage(t *testing.T) time.Duration {
	v := os.Getenv("USERSVC_TEST_ETCD_OUTAGE")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("USERSVC_TEST_ETCD_OUTAGE: %v", err)
	}
	return d
}

// degradedText is what /readyz says while lookups are served from cache.
const degradedText = "degraded: registry unreachable, serving from cache"

// TestEtcdOutageUnderLoad cuts every connection to the cluster's own etcd
// for etcdOutage under steady load through the gateway: a proxy in front
// of the private etcd this test started goes down, which to the processes
// is etcd gone (connections reset, new ones refused; the leases run out in
// etcd meanwhile, as they would on a real stop longer than the TTL). No
// request before, during or after the outage may fail; every role's
// /readyz stays 200 throughout and says it serves from cache before the
// outage ends; after it the registrations are back in etcd by themselves
// and every /readyz is plain ready again; every log line of every process
// is JSON. Latency per phase is logged (docs/benchmarks.md §12).
func TestEtcdOutageUnderLoad(t *testing.T) {
	dsn := testenv.MySQLDSN(t)
	etcd := testenv.NewProxy(t, etcdtest.StartEtcd(t))
	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 2, MySQLDSN: dsn, Etcd: etcd.Addr()})
	users := signedInUsers(t, c.GatewayURL(), "etcd", 4)
	urls := readyURLs(c)

	load := startSteadyLoad(t, c.GatewayURL(), users)
	time.Sleep(5 * time.Second)
	for name, u := range urls {
		if st, body := readyz(u); st != 200 || strings.Contains(body, "degraded") {
			t.Errorf("%s /readyz before the outage: %d %s", name, st, body)
		}
	}

	load.next()
	etcd.Down()
	duringEtcdOutage(t, urls, time.Now(), etcdOutage(t))
	etcd.Up()
	load.next()
	back := time.Now()
	reg := etcdRegistry(t, etcd.Addr())
	testenv.Eventually(t, 30*time.Second, "2 services and 2 APIs registered again", func() bool {
		return nodes(reg, rpc.ServiceName) == 2 && nodes(reg, "user.api") == 2
	})
	t.Logf("registrations back %v after etcd", time.Since(back).Round(time.Millisecond))
	for name, u := range urls {
		testenv.Eventually(t, 30*time.Second, name+" /readyz plain ready", func() bool {
			st, body := readyz(u)
			return st == 200 && !strings.Contains(body, "degraded")
		})
	}
	time.Sleep(5 * time.Second)

	checkEtcdOutageSamples(t, load.end(t))
	checkJSONLogs(t, c)
}

// duringEtcdOutage watches the /readyz of every role while etcd is away
// (from cut for outage): every answer must be 200, and by the last second
// of the outage each must say it serves from cache. When each first said
// so is logged.
func duringEtcdOutage(t *testing.T, urls map[string]string, cut time.Time, outage time.Duration) {
	t.Helper()
	end := cut.Add(outage)
	noticed := map[string]bool{}
	for time.Now().Before(end) {
		for name, u := range urls {
			st, body := readyz(u)
			switch {
			case st != 200:
				t.Errorf("%s /readyz %v into the outage: %d %s, want 200", name, time.Since(cut).Round(100*time.Millisecond), st, body)
			case strings.Contains(body, degradedText) && !noticed[name]:
				noticed[name] = true
				t.Logf("%s /readyz degraded %v into the outage", name, time.Since(cut).Round(100*time.Millisecond))
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for name := range urls {
		if !noticed[name] {
			t.Errorf("%s /readyz never said %q during the outage", name, degradedText)
		}
	}
}

// checkEtcdOutageSamples fails the test for any failed request, in any
// phase.
func checkEtcdOutageSamples(t *testing.T, samples [][]sample) {
	t.Helper()
	failed := map[string]int{}
	for i, ss := range samples {
		for _, s := range ss {
			if s.err != "" {
				_, body, _ := strings.Cut(s.err, ": ") // the answer, not which user asked
				failed[fmt.Sprintf("%s the outage: %d %s", phases[i], s.status, body)]++
			}
		}
	}
	for what, n := range failed {
		t.Errorf("%d requests failed %s", n, what)
	}
}
