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

// rollingUpdate restarts the service Deployment (`kubectl rollout
// restart`: a new ReplicaSet, the old pod drained) while two clients keep
// reading and updating the walker's user through the gateway, and fails on
// any request that is not answered 200: readiness must hold the new pod
// back until it serves, and the preStop pause with the drain must let the
// old one finish what it has. The load stops once the old pod is gone.
func (c *cluster) rollingUpdate(t *testing.T, w *walker, deploy string) {
	t.Helper()
	const ns = "usersvc-dev"
	old := strings.Fields(c.kubectl(t, nil, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=service",
		"-o", "jsonpath={range .items[*]}pod/{.metadata.name} {end}"))
	if len(old) == 0 {
		t.Fatal("no service pod before the rolling update")
	}
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
				status, b, err := w.do(method, "/user/"+w.id, body)
				switch {
				case err != nil:
					n.fail(fmt.Sprintf("%s: %v", method, err))
				case status != http.StatusOK:
					n.fail(fmt.Sprintf("%s: %d %s", method, status, b))
				default:
					n.answered.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	c.kubectl(t, nil, "-n", ns, "rollout", "restart", deploy)
	c.kubectl(t, nil, "-n", ns, "rollout", "status", deploy, "--timeout=5m")
	c.kubectl(t, nil, append([]string{"-n", ns, "wait", "--for=delete", "--timeout=2m"}, old...)...)
	took := time.Since(start)
	cancel()
	wg.Wait()
	t.Logf("rolling update of %s under load: %d requests answered, %d failed, in %s (old %v gone)",
		deploy, n.answered.Load(), n.failed.Load(), took.Round(100*time.Millisecond), old)
	if n.failed.Load() > 0 {
		t.Errorf("%d requests failed during the rolling update; the first: %q", n.failed.Load(), n.samples)
	}
	if n.answered.Load() < 20 {
		t.Errorf("only %d requests answered during the rolling update: the load was not steady", n.answered.Load())
	}
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
