// Package cluster runs the real usersvc binary as separate processes on
// loopback — a distributed deployment (services, APIs and a gateway
// sharing etcd and MariaDB) or the single-process dev mode — for end-to-end
// tests and load programs.
//
// Nothing is in-process: each role is `usersvc <role>` built from
// ./cmd/usersvc, configured only through USERSVC_* environment variables,
// and observed only through its sockets and its log. So what passes here
// exercises the same start-up, configuration, discovery, failover and
// shutdown paths as a deployment, and a process can be killed for real.
//
// The API takes a TB, which *testing.T and *testing.B satisfy; a program
// outside `go test` passes a Program.
package cluster

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TB is the part of testing.TB this package uses. It is an interface of
// its own, rather than testing.TB (which only package testing can
// implement), so that a load program can drive a cluster too; see Program.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// RegistryTTL is the registry lease of every cluster process. Short, so a
// killed instance leaves the registry (and the gateway's and APIs'
// instance lists) within seconds rather than the default 15s.
const RegistryTTL = 3 * time.Second

// Options describe a cluster.
type Options struct {
	// Services and APIs are the numbers of `usersvc service` and
	// `usersvc api` processes; 0 means 2 each.
	Services, APIs int
	// Workers is the number of `usersvc worker` processes (default 0); they
	// need USERSVC_RABBITMQ_URL in Env.
	Workers int
	// MySQLDSN is the database, already created and empty (e.g. from
	// testenv.MySQLDSN); required. Start runs `usersvc migrate` on it.
	MySQLDSN string
	// Etcd is the etcd endpoint (host:port, or several comma-separated);
	// required.
	Etcd string
	// Env holds extra USERSVC_* settings for every process, overriding
	// the cluster's defaults (e.g. the cheap argon2 parameters, or the
	// rate limits, which are raised out of the way). The
	// listen addresses, the logging format (JSON) and a level of at least
	// info are the cluster's, as it depends on them to know when a
	// process is ready.
	Env map[string]string
	// ServiceEnv, when set, adds settings for one service each (index i is
	// service i+1) over Env, e.g. a USERSVC_MYSQL_DSN through a proxy so a
	// test can cut one instance's database and not the other's.
	ServiceEnv []map[string]string
}

// Cluster is a running distributed deployment: Services user services,
// APIs HTTP APIs and one gateway, all on 127.0.0.1, registered in etcd and
// sharing the database, the signing keys and the mail directory. Every
// process is stopped (SIGTERM) when the test ends; one that did not exit
// cleanly, or had crashed, fails the test.
type Cluster struct {
	bin      string
	base     map[string]string // settings every process gets
	mailDir  string
	keysDir  string
	gateway  *Proc
	services []*Proc
	apis     []*Proc
	workers  []*Proc
}

// Start builds the binary (once per process), provisions the keys and the
// schema, and starts the processes: the gateway first (so it discovers the
// others as they come), then the services, then the APIs. It returns once
// the gateway's /readyz is 200, a request through the gateway has reached
// every API instance, and GET /.well-known/jwks.json through it (gateway →
// API → service) is 200.
func Start(t TB, o Options) *Cluster {
	t.Helper()
	if o.MySQLDSN == "" || o.Etcd == "" {
		t.Fatalf("cluster: Options.MySQLDSN and Options.Etcd are required")
	}
	if o.Services <= 0 {
		o.Services = 2
	}
	if o.APIs <= 0 {
		o.APIs = 2
	}
	root := t.TempDir()
	c := newCluster(t, Build(t), root, o)
	// Keys and schema are an operator's steps before the first start.
	run(t, c.bin, c.base, "", "keys", "generate")
	run(t, c.bin, c.base, "", "migrate")

	ps := &procSet{t: t, bin: c.bin, root: root}
	t.Cleanup(ps.stop) // registered before any process starts
	c.gateway = ps.start("gateway", "USERSVC_HTTP_ADDR", "gateway started", 1, c.base, nil)[0]
	// Links in reset mails point at the gateway, the public entry point.
	if _, ok := o.Env["USERSVC_PUBLIC_URL"]; !ok {
		c.base["USERSVC_PUBLIC_URL"] = c.GatewayURL()
	}
	c.services = ps.start("service", "USERSVC_GRPC_ADDR", "user service started", o.Services, c.base, o.ServiceEnv)
	c.apis = ps.start("api", "USERSVC_API_ADDR", "api started", o.APIs, c.base, nil)
	if o.Workers > 0 {
		c.workers = ps.start("worker", "USERSVC_OPS_ADDR", "worker started", o.Workers, c.base, nil)
	}

	if err := c.waitReady(); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	return c
}

// newCluster is a cluster with its directories made under root and the
// settings every process gets: o's database and etcd, the test's fast
// hashing and logging, the shared keys and mail directories, o.Env last.
func newCluster(t TB, bin, root string, o Options) *Cluster {
	t.Helper()
	c := &Cluster{bin: bin, mailDir: filepath.Join(root, "mail"), keysDir: filepath.Join(root, "keys")}
	c.base = map[string]string{
		"USERSVC_ETCD_ENDPOINTS":    o.Etcd,
		"USERSVC_MYSQL_DSN":         o.MySQLDSN,
		"USERSVC_DATA_DIR":          filepath.Join(root, "data"),
		"USERSVC_JWT_KEYS_DIR":      c.keysDir,
		"USERSVC_MAIL_DIR":          c.mailDir,
		"USERSVC_REGISTRY_TTL":      RegistryTTL.String(),
		"USERSVC_SHUTDOWN_TIMEOUT":  "5s",
		"USERSVC_ARGON2_MEMORY_KIB": "64",
		"USERSVC_ARGON2_ITERATIONS": "1",
		"USERSVC_LOG_LEVEL":         "info",
		// Many services on one host: not the fixed default health port.
		"USERSVC_OPS_ADDR": "127.0.0.1:0",
	}
	maps.Copy(c.base, unthrottled)
	maps.Copy(c.base, o.Env)
	forceLogging(c.base)
	for _, dir := range []string{c.mailDir, c.keysDir, c.base["USERSVC_DATA_DIR"]} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	return c
}

// procSet is every process a cluster started, for the one cleanup that
// stops them in order.
type procSet struct {
	t         TB
	bin, root string
	mu        sync.Mutex
	procs     []*Proc
}

// start starts n processes of role at once, each with its own listen
// address in addrKey, and waits until each logged ready; the i-th gets
// envs[i] over env when there is one. A failure fails the test.
func (ps *procSet) start(role, addrKey, ready string, n int, env map[string]string, envs []map[string]string) []*Proc {
	ps.t.Helper()
	out := make([]*Proc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		spec := procSpec{name: fmt.Sprintf("%s-%d", role, i+1), role: role, bin: ps.bin, dir: ps.root,
			env: env, addrKey: addrKey, ready: ready}
		if i < len(envs) {
			spec.env = withEnv(env, envs[i])
		}
		wg.Go(func() {
			p, err := startProc(spec)
			out[i], errs[i] = p, err
			if p != nil {
				ps.mu.Lock()
				ps.procs = append(ps.procs, p)
				ps.mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			ps.t.Fatalf("cluster: %v", err)
		}
	}
	return out
}

// stop stops the gateway first so that no new requests come in, then the
// APIs, then the services they call (and the workers); on a failed test it
// logs each process's tail.
func (ps *procSet) stop() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var gw, apis, svcs []*Proc
	for _, p := range ps.procs {
		switch p.role {
		case "gateway":
			gw = append(gw, p)
		case "api":
			apis = append(apis, p)
		default:
			svcs = append(svcs, p)
		}
	}
	for _, group := range [][]*Proc{gw, apis, svcs} {
		if err := stopAll(group); err != nil {
			ps.t.Errorf("cluster: %v", err)
		}
	}
	if ps.t.Failed() {
		for _, p := range ps.procs {
			ps.t.Logf("cluster: log of %s (%s, %s):\n%s", p.name, p.role, p.addr, p.tail())
		}
	}
}

// waitReady waits until the gateway routes to every API and a request
// makes it through gateway, API and service.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(StartTimeout)
	if err := waitHTTP(c.gateway, c.GatewayURL()+"/readyz", StartTimeout); err != nil {
		return err
	}
	// The gateway learns the APIs from etcd one by one, and round-robins
	// over those it knows; requests tagged with a request ID show in the
	// access log of the API that served them. Once each API has logged one,
	// the gateway knows them all.
	seen := make([]bool, len(c.apis))
	var ids []string // of the requests answered 200
	prefix := "cluster-ready-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var lastErr error
	for n := 0; ; n++ {
		id := prefix + strconv.Itoa(n)
		if err := getOK(c.GatewayURL()+"/.well-known/jwks.json", id); err != nil {
			lastErr = err
		} else {
			ids = append(ids, id)
		}
		all := true
		for i, api := range c.apis {
			if !seen[i] {
				logs := api.Logs()
				for _, id := range ids {
					if strings.Contains(logs, `"transaction.id":"`+id+`"`) {
						seen[i] = true
						break
					}
				}
			}
			all = all && seen[i]
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /.well-known/jwks.json through the gateway was answered by the APIs %v within %s (last error: %v)",
				seen, StartTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GatewayURL is the base URL of the gateway, e.g. http://127.0.0.1:40123.
func (c *Cluster) GatewayURL() string { return "http://" + c.gateway.addr }

// Gateway is the gateway process.
func (c *Cluster) Gateway() *Proc { return c.gateway }

// Services are the user-service processes.
func (c *Cluster) Services() []*Proc { return c.services }

// APIs are the HTTP API processes.
func (c *Cluster) APIs() []*Proc { return c.apis }

// Workers are the event-consumer processes.
func (c *Cluster) Workers() []*Proc { return c.workers }

// MailDir is the directory the services' mailers write reset mails into
// (read it with mail.ReadDir).
func (c *Cluster) MailDir() string { return c.mailDir }

// Admin creates an administrator with `usersvc admin create`, the password
// on standard input, and returns the new user's ID.
func (c *Cluster) Admin(t TB, email, password string) string {
	t.Helper()
	return strings.TrimSpace(run(t, c.bin, c.base, password+"\n", "admin", "create", "--email", email))
}

// StartDev runs `usersvc dev` — gateway, API and service in one process,
// on SQLite and an in-process registry — on a free port, and returns it
// with its base URL once /readyz and GET /.well-known/jwks.json answer
// 200. It has the cluster's cheap argon2 parameters and raised rate
// limits; env adds or overrides USERSVC_* settings; without
// USERSVC_DATA_DIR it gets a new temporary data directory. To restart on
// the same data, Stop the process and pass
// {"USERSVC_DATA_DIR": p.Getenv("USERSVC_DATA_DIR")}. The process is
// stopped when the test ends.
func StartDev(t TB, env map[string]string) (*Proc, string) {
	t.Helper()
	bin := Build(t)
	dir := t.TempDir()
	settings := map[string]string{
		"USERSVC_DATA_DIR":          filepath.Join(dir, "data"),
		"USERSVC_SHUTDOWN_TIMEOUT":  "5s",
		"USERSVC_ARGON2_MEMORY_KIB": "64",
		"USERSVC_ARGON2_ITERATIONS": "1",
		"USERSVC_LOG_LEVEL":         "info",
	}
	for k, v := range unthrottled {
		settings[k] = v
	}
	for k, v := range env {
		settings[k] = v
	}
	forceLogging(settings)
	// Spelled out so that Getenv tells where the mail goes; these are
	// the dev mode's own defaults.
	if settings["USERSVC_MAIL_DIR"] == "" {
		settings["USERSVC_MAIL_DIR"] = filepath.Join(settings["USERSVC_DATA_DIR"], "mail")
	}
	if settings["USERSVC_JWT_KEYS_DIR"] == "" {
		settings["USERSVC_JWT_KEYS_DIR"] = filepath.Join(settings["USERSVC_DATA_DIR"], "keys")
	}
	p, err := startProc(procSpec{name: "dev", role: "dev", bin: bin, dir: dir, env: settings,
		addrKey: "USERSVC_HTTP_ADDR", ready: "usersvc dev mode"})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("cluster: %v", err)
		}
		if t.Failed() {
			t.Logf("cluster: log of %s (%s):\n%s", p.name, p.addr, p.tail())
		}
	})
	url := "http://" + p.addr
	for _, path := range []string{"/readyz", "/.well-known/jwks.json"} {
		if err := waitHTTP(p, url+path, StartTimeout); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	return p, url
}

// unthrottled raises the per-client rate limits far above what a test or
// a load program sends: every request of theirs comes from 127.0.0.1, so
// the production defaults (e.g. 20 sign-ins a minute per IP) would turn
// most of them into 429s. A test of the limits sets its own in Env.
var unthrottled = map[string]string{
	"USERSVC_RATE_LOGIN_IP":      "1000000/1m",
	"USERSVC_RATE_LOGIN_ACCOUNT": "1000000/1m",
	"USERSVC_RATE_REGISTER_IP":   "1000000/1m",
	"USERSVC_RATE_RESET_IP":      "1000000/1m",
	"USERSVC_RATE_RESET_ACCOUNT": "1000000/1m",
}

// withEnv is a copy of base with extra's settings over it; the logging
// settings stay the cluster's.
func withEnv(base, extra map[string]string) map[string]string {
	env := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	forceLogging(env)
	return env
}

// forceLogging keeps the settings the cluster reads the logs by: JSON
// lines, and the info messages that announce a started process.
func forceLogging(env map[string]string) {
	env["USERSVC_LOG_FORMAT"] = "json"
	if env["USERSVC_LOG_LEVEL"] != "debug" {
		env["USERSVC_LOG_LEVEL"] = "info"
	}
}
