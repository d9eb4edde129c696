package deploytest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadCounts are the answers of the steady load during a rolling update.
type loadCounts struct {
	answered, failed atomic.Int64
	mu               sync.Mutex
	samples          []string // the first failures, for the log
}

func (l *loadCounts) fail(what string) {
	if l.failed.Add(1) <= 5 {
		l.mu.Lock()
		l.samples = append(l.samples, what)
		l.mu.Unlock()
	}
}

// startLoad has two clients keep reading and updating the walker's user
// through the gateway (GET and PUT /user/{id} in turn: the PUT always
// reaches the service and MySQL), counting what is answered 200 and what
// is not, until the returned stop is called.
func startLoad(w *walker) (stop func() *loadCounts) {
	var n loadCounts
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				method, body := "GET", any(nil)
				if j%2 == 1 {
					method, body = "PUT", map[string]string{"name": fmt.Sprintf("Alice %d-%d", i, j)}
				}
				r, err := w.try(ctx, method, "/user/"+w.id, body)
				switch {
				case ctx.Err() != nil: // stopped while the request was under way
				case err != nil:
					n.fail(fmt.Sprintf("%s: %v", method, err))
				case r.Status != http.StatusOK:
					n.fail(fmt.Sprintf("%s: %d %s", method, r.Status, r.Body))
				default:
					n.answered.Add(1)
				}
			}
		}()
	}
	return func() *loadCounts {
		cancel()
		wg.Wait()
		return &n
	}
}

// check logs the counts and fails the test on any failed request, or when
// too few were answered for the load to have been steady.
func (n *loadCounts) check(t *testing.T, what string, took time.Duration) {
	t.Helper()
	t.Logf("%s under load: %d requests answered, %d failed, in %s", what, n.answered.Load(), n.failed.Load(), took.Round(100*time.Millisecond))
	if n.failed.Load() > 0 {
		t.Errorf("%s: %d requests failed; the first: %q", what, n.failed.Load(), n.samples)
	}
	if n.answered.Load() < 20 {
		t.Errorf("%s: only %d requests answered: the load was not steady", what, n.answered.Load())
	}
}

// podsOf names a component's pods as pod/NAME.
func (c *cluster) podsOf(t *testing.T, ns, component string) []string {
	t.Helper()
	return strings.Fields(c.kubectl(t, nil, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/component="+component,
		"-o", "jsonpath={range .items[*]}pod/{.metadata.name} {end}"))
}

// rollingUpdate restarts the service Deployment (`kubectl rollout
// restart`: a new ReplicaSet, the old pod drained) under startLoad's load
// and fails on any request not answered 200: readiness must hold the new
// pod back until it serves, and the preStop pause with the drain must let
// the old one finish what it has. The load stops once the old pod is gone.
func (c *cluster) rollingUpdate(t *testing.T, w *walker, deploy string) {
	t.Helper()
	const ns = "usersvc-dev"
	old := c.podsOf(t, ns, "service")
	if len(old) == 0 {
		t.Fatal("no service pod before the rolling update")
	}
	stop := startLoad(w)
	start := time.Now()
	c.kubectl(t, nil, "-n", ns, "rollout", "restart", deploy)
	c.kubectl(t, nil, "-n", ns, "rollout", "status", deploy, "--timeout=5m")
	c.kubectl(t, nil, append([]string{"-n", ns, "wait", "--for=delete", "--timeout=2m"}, old...)...)
	stop().check(t, "rolling update of "+deploy+" (old "+strings.Join(old, " ")+" gone)", time.Since(start))
}

// evictUnderBudget scales the API to two pods and asks the Eviction API to
// evict both at once, under load: the PodDisruptionBudget (maxUnavailable
// 1) must admit the first and refuse the second (429), and the evicted
// pod's drain must fail no request while its replacement comes up.
func (c *cluster) evictUnderBudget(t *testing.T, w *walker) {
	t.Helper()
	const ns = "usersvc-dev"
	c.kubectl(t, nil, "-n", ns, "scale", "deploy/usersvc-api", "--replicas=2")
	c.kubectl(t, nil, "-n", ns, "rollout", "status", "deploy/usersvc-api", "--timeout=5m")
	c.kubectl(t, nil, "-n", ns, "wait", "--for=jsonpath={.status.disruptionsAllowed}=1", "pdb/usersvc-api", "--timeout=2m")
	pods := c.podsOf(t, ns, "api")
	if len(pods) != 2 {
		t.Fatalf("%d API pods after scaling to 2: %v", len(pods), pods)
	}
	stop := startLoad(w)
	start := time.Now()
	var refused int
	var evicted []string
	for _, p := range pods {
		name := strings.TrimPrefix(p, "pod/")
		ev := fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":%q,"namespace":%q}}`, name, ns)
		out, err := c.try([]byte(ev), "create", "--raw", "/api/v1/namespaces/"+ns+"/pods/"+name+"/eviction", "-f", "-")
		switch {
		case err == nil:
			evicted = append(evicted, p)
			t.Logf("eviction of %s admitted", p)
		case strings.Contains(out, "disruption budget"):
			refused++
			t.Logf("eviction of %s refused: %s", p, strings.TrimSpace(out))
		default:
			t.Errorf("eviction of %s: %v\n%s", p, err, out)
		}
	}
	if refused != 1 {
		t.Errorf("%d of 2 simultaneous evictions refused, want 1 (PodDisruptionBudget usersvc-api, maxUnavailable 1)", refused)
	}
	if len(evicted) > 0 {
		c.kubectl(t, nil, append([]string{"-n", ns, "wait", "--for=delete", "--timeout=2m"}, evicted...)...)
	}
	c.kubectl(t, nil, "-n", ns, "wait", "--for=jsonpath={.status.disruptionsAllowed}=1", "pdb/usersvc-api", "--timeout=3m")
	stop().check(t, "eviction of an API pod under its PodDisruptionBudget", time.Since(start))
}

// prodServerSide applies the prod overlay server-side (`kubectl apply
// --server-side`) as a server dry run: the API server admits, validates
// and merges every object with its field manager, Pod Security included,
// but creates none of them, because prod's pods would need what this
// machine has not (managed MySQL/Redis/RabbitMQ at its Secrets' hosts,
// the gRPC certificate, three zones). Its Namespace is applied for real
// first, since a dry run creates nothing for the rest to go into.
func (c *cluster) prodServerSide(t *testing.T) {
	t.Helper()
	r := render(t, "prod")
	var ns []byte
	for _, doc := range strings.Split(string(r.raw), "\n---\n") {
		if strings.Contains(doc, "kind: Namespace\n") {
			ns = []byte(doc)
		}
	}
	if ns == nil {
		t.Fatal("prod renders no Namespace")
	}
	c.kubectl(t, ns, "apply", "--server-side", "-f", "-")
	out := c.kubectl(t, r.raw, "apply", "--server-side", "--dry-run=server", "-f", "-")
	if n := strings.Count(out, "serverside-applied (server dry run)"); n != len(r.objects) {
		t.Errorf("%d of %d prod objects applied server-side:\n%s", n, len(r.objects), out)
	}
	t.Logf("prod: %d objects applied server-side (server dry run)", len(r.objects))
}
