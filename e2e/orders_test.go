package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// ordersProc is one process of the example order service
// (examples/orders, a module of its own that imports only the SDK).
type ordersProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	env  []string
	bin  string
	log  string
	done chan struct{}
}

// buildOrders builds the example with its own go.mod, as another team's
// service would be built.
func buildOrders(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orders")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/orders")
	cmd.Dir = filepath.Join("..", "examples", "orders")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/orders: %v\n%s", err, out)
	}
	return bin
}

// startOrders starts an instance on a free port and waits for /readyz.
func startOrders(t *testing.T, bin string, env map[string]string) *ordersProc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := &ordersProc{t: t, bin: bin, url: "http://" + addr, log: filepath.Join(t.TempDir(), "orders.log")}
	p.env = append(os.Environ(), "ORDERS_HTTP_ADDR="+addr)
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	p.start()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

func (p *ordersProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = p.env, logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start orders: %v", err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	p.waitReady(30 * time.Second)
}

func (p *ordersProc) waitReady(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for p.status("/readyz", "") != http.StatusNoContent {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("orders at %s not ready within %v; log:\n%s", p.url, within, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process with sig (SIGKILL: no shutdown at all).
func (p *ordersProc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

var ordersHTTP = &http.Client{Timeout: 5 * time.Second}

// status is the status of GET path with token (0 if no answer).
func (p *ordersProc) status(path, token string) int {
	req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ordersHTTP.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// untilRefused polls every instance with token until each answers 401,
// and returns how long that took from start.
func untilRefused(t *testing.T, start time.Time, token string, procs ...*ordersProc) time.Duration {
	t.Helper()
	for _, p := range procs {
		for p.status("/orders", token) != http.StatusUnauthorized {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("%s still honours a revoked token after 30s", p.url)
			}
		}
	}
	return time.Since(start)
}

// TestOrdersExampleRefusesRevokedTokens runs the example service (two
// instances) against the distributed deployment on RabbitMQ and measures
// how long a logout, and a disable, takes to reach both; then it cuts one
// instance's broker connection (it fails closed, then catches up) and
// SIGKILLs one in a burst of logouts (after a restart it refuses them all).
func TestOrdersExampleRefusesRevokedTokens(t *testing.T) {
	amqpURL := testenv.RabbitMQURL(t)
	dsn := testenv.MySQLDSN(t)
	etcd := etcdtest.StartEtcd(t)
	ns := testNamespace(t, amqpURL)
	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 1, MySQLDSN: dsn, Etcd: etcd,
		Env: map[string]string{"USERSVC_RABBITMQ_URL": amqpURL, "USERSVC_NAMESPACE": ns}})
	out := c.Services()[0].Run(t, "", "admin", "service-account", "create", "--name", "orders", "--scopes", "users:read")
	m := regexp.MustCompile(`(?m)^client_id=(\S+)\nclient_secret=(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("service-account create printed:\n%s", out)
	}
	bin := buildOrders(t)
	env := map[string]string{"ORDERS_ETCD_ENDPOINTS": etcd, "ORDERS_EXCHANGE": ns + ".user.events",
		"ORDERS_CLIENT_ID": m[1], "ORDERS_CLIENT_SECRET": m[2], "ORDERS_RABBITMQ_URL": amqpURL}
	proxied, proxy := testenv.RabbitMQProxy(t)
	o1 := startOrders(t, bin, env)
	env2 := map[string]string{}
	for k, v := range env {
		env2[k] = v
	}
	env2["ORDERS_RABBITMQ_URL"] = proxied
	o2 := startOrders(t, bin, env2)

	cl := apiclient.New(t, c.GatewayURL())
	ann := register(cl, "ann@example.com", "Ann")
	c.Admin(t, "root@example.com", userPassword)
	admin := login(cl, "root@example.com", userPassword)
	if s := o1.status("/orders", ann.Access); s != http.StatusOK {
		t.Fatalf("a fresh token: %d, want 200", s)
	}
	if s := o1.status("/orders/all", ann.Access); s != http.StatusForbidden {
		t.Fatalf("a plain user lists all orders: %d, want 403", s)
	}
	if s := o1.status("/orders/all", admin.AccessToken); s != http.StatusOK {
		t.Fatalf("an admin lists all orders: %d, want 200", s)
	}
	// The scope: a service account granted users:read may list them all,
	// and is no user to have orders of its own.
	var sa apiclient.Token
	cl.Do("POST", "/user/token", "", map[string]any{"grant_type": "client_credentials", "client_id": m[1], "client_secret": m[2]}).
		WantStatus(200).Decode(&sa)
	if s := o1.status("/orders/all", sa.AccessToken); s != http.StatusOK {
		t.Fatalf("a users:read service account lists all orders: %d, want 200", s)
	}
	if s := o1.status("/orders", sa.AccessToken); s != http.StatusForbidden {
		t.Fatalf("a service account lists its own orders: %d, want 403", s)
	}

	const trials = 100
	measure := func(name string, revoke func(tok apiclient.Token)) {
		var ds []time.Duration
		for range trials {
			tok := login(cl, ann.Email, userPassword)
			for _, p := range []*ordersProc{o1, o2} {
				if s := p.status("/orders", tok.AccessToken); s != http.StatusOK {
					t.Fatalf("%s: fresh token answered %d", name, s)
				}
			}
			start := time.Now()
			revoke(tok)
			ds = append(ds, untilRefused(t, start, tok.AccessToken, o1, o2))
		}
		slices.Sort(ds)
		// A measurement, not an assertion (a shared machine's load moves
		// it): the goal is p99 ≤ 1 s, recorded in docs/benchmarks.md; what
		// the test asserts is that every revoked token is refused, by both
		// instances, within untilRefused's bound.
		t.Logf("%s → refused by both instances: p50 %v, p99 %v, max %v over %d trials", name,
			percentile(ds, 50), percentile(ds, 99), ds[len(ds)-1].Round(100*time.Microsecond), trials)
	}
	measure("logout", func(tok apiclient.Token) {
		cl.Do("DELETE", "/user/token", tok.AccessToken, map[string]any{"refresh_token": tok.RefreshToken}).
			WantStatus(204)
	})
	measure("disable", func(apiclient.Token) {
		cl.Do("PUT", "/user/"+ann.ID, admin.AccessToken, map[string]any{"status": "disabled"}).WantStatus(200)
		// Enabled again at once: the disable's revocation covers the
		// tokens issued before it, not the next trial's.
		cl.Do("PUT", "/user/"+ann.ID, admin.AccessToken, map[string]any{"status": "active"}).WantStatus(200)
	})

	brokerCut(t, cl, ann, o1, o2, proxy)
	killDuringBurst(t, cl, ann, o1, o2)
}

// brokerCut: with its broker connection cut, o2 fails closed (503, not
// ready) while o1 refuses a logout at once; back on the broker, o2 catches
// up and refuses it too.
func brokerCut(t *testing.T, cl *apiclient.Client, ann account, o1, o2 *ordersProc, proxy *testenv.Proxy) {
	t.Helper()
	kept := login(cl, ann.Email, userPassword)
	gone := login(cl, ann.Email, userPassword)
	proxy.Down()
	deadline := time.Now().Add(15 * time.Second)
	for o2.status("/readyz", "") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("o2 still ready 15s after its broker connection was cut")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cutAt := time.Now()
	if s := o2.status("/orders", kept.AccessToken); s != http.StatusServiceUnavailable {
		t.Errorf("during the cut o2 answered %d, want 503 (fail closed)", s)
	}
	start := time.Now()
	cl.Do("DELETE", "/user/token", gone.AccessToken, map[string]any{"refresh_token": gone.RefreshToken}).WantStatus(204)
	t.Logf("logout during the cut: refused by o1 after %v", untilRefused(t, start, gone.AccessToken, o1).Round(time.Millisecond))
	proxy.Up()
	o2.waitReady(30 * time.Second)
	t.Logf("o2 back and caught up %v after the cut was noticed", time.Since(cutAt).Round(time.Millisecond))
	if s := o2.status("/orders", gone.AccessToken); s != http.StatusUnauthorized {
		t.Errorf("after the cut o2 answered %d for the token logged out during it, want 401", s)
	}
	if s := o2.status("/orders", kept.AccessToken); s != http.StatusOK {
		t.Errorf("after the cut o2 answered %d for a live token, want 200", s)
	}
}

// killDuringBurst SIGKILLs o2 in the middle of 20 logouts and restarts it:
// it refuses every one of them (caught up), as o1 does.
func killDuringBurst(t *testing.T, cl *apiclient.Client, ann account, o1, o2 *ordersProc) {
	t.Helper()
	var toks []apiclient.Token
	for range 20 {
		toks = append(toks, login(cl, ann.Email, userPassword))
	}
	for i, tok := range toks {
		if i == 10 {
			o2.stop(syscall.SIGKILL)
		}
		cl.Do("DELETE", "/user/token", tok.AccessToken, map[string]any{"refresh_token": tok.RefreshToken}).WantStatus(204)
	}
	o2.start()
	// o1 hears of the last logouts through the relay's poll, a moment
	// after their 204s, so each token gets untilRefused's bound; o2 can
	// learn of those made while it was down only from its catch-up (its
	// queue went with it), so a catch-up that missed one still fails here.
	start := time.Now()
	for _, tok := range toks {
		untilRefused(t, start, tok.AccessToken, o1, o2)
	}
}
