package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/usersvc/usersvc/internal/testenv"
)

// ComposeEnv names docker compose v2 (scripts/opstools.sh docker-compose,
// built from its Go module), run standalone against podman's Docker API
// socket; JaegerBinEnv the Jaeger the stand-in image carries (the e2e
// suite's); StandinCacheEnv a directory kept between runs for the stand-in
// image, saved as a tarball named by the hash of what it is built from.
const (
	ComposeEnv      = "USERSVC_TEST_COMPOSE"
	JaegerBinEnv    = "USERSVC_TEST_JAEGER_BIN"
	StandinCacheEnv = "USERSVC_TEST_STANDIN_CACHE"
)

// composeSubnet is the subnet compose.yaml fixes for its network (nginx and
// the gateway have fixed addresses the trusted-proxy settings name).
const composeSubnet = "10.89.0.0/24"

// composeServices are the services TestComposeUp starts (with what they
// depend on): everything of the default stack but Grafana, which has no
// Debian package to make a stand-in from (README).
var composeServices = []string{"nginx", "gateway", "api", "service", "worker", "prometheus", "alertmanager", "jaeger", "rabbitmq"}

// stack is a compose project brought up by docker compose on a podman of
// the test's own.
type stack struct {
	pm      *podman
	compose string
	env     []string // DOCKER_HOST and the variables compose.yaml interpolates
	files   []string // -f arguments
	ports   map[string]string
}

// TestComposeUp brings deploy/compose/compose.yaml up for real: the usersvc
// image built from the repository's Dockerfile, the third-party services
// from a Debian stand-in image (testdata/compose.standins.yaml says what the
// override changes: images, nothing else), docker compose v2 against
// podman's Docker API. Then, through the running stack: the README's curl
// walk through nginx over TLS (the certificate the init service made),
// including a password reset whose mail the worker container writes into
// the mail volume; Prometheus scraping every usersvc replica by service
// name; a trace across the roles in Jaeger; and `compose down -v` leaving no
// container, volume, network, bridge, iptables rule or CNI state behind.
func TestComposeUp(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("podman with runc: linux only")
	}
	rootfs := testenv.Need(t, DebianRootfsEnv)
	podmanBin := testenv.Need(t, PodmanEnv)
	composeBin := testenv.Need(t, ComposeEnv)
	jaegerBin := testenv.Need(t, JaegerBinEnv)
	testStart := time.Now()

	// The host's state first: its cleanup runs last, after podman's.
	bridge := fmt.Sprintf("usvc%d", os.Getpid()%1000000)
	watchHost(t, bridge)
	pm := newPodman(t, podmanBin)

	const tag = "compose-test"
	start := time.Now()
	commit := buildUsersvcImage(t, pm, rootfs, tag, "localhost/usersvc/usersvc:"+tag)
	t.Logf("the usersvc image built in %s", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	standin := standinImage(t, pm, jaegerBin)
	t.Logf("the stand-in image ready in %s", time.Since(start).Round(100*time.Millisecond))

	st := newStack(t, pm, composeBin, map[string]string{
		"IMAGE_TAG": tag, "GIT_COMMIT": commit, "STANDIN_IMAGE": standin, "STANDIN_BRIDGE": bridge,
	})
	t.Logf("setup (images, podman service) took %s", time.Since(testStart).Round(100*time.Millisecond))

	start = time.Now()
	st.run(t, append([]string{"up", "-d", "--no-build"}, composeServices...)...)
	hc := st.httpsClient(t)
	api := "https://localhost:" + st.ports["HTTPS_PORT"]
	testenv.Eventually(t, 2*time.Minute, "a 200 through nginx", func() bool {
		res, err := hc.Get(api + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	t.Logf("compose up to the first 200 through nginx: %s", time.Since(start).Round(100*time.Millisecond))
	st.checkHealthy(t)

	walkREADME(t, st, hc, api)
	checkPrometheusTargets(t, st)
	checkJaegerTrace(t, st)

	start = time.Now()
	st.run(t, "down", "-v", "-t", "20")
	t.Logf("compose down in %s", time.Since(start).Round(100*time.Millisecond))
	st.checkGone(t, bridge)
	t.Logf("the whole test (with its cleanup still to run) took %s", time.Since(testStart).Round(time.Second))
}

// newStack starts podman's Docker API service on a socket in pm's
// directory, runs the health checks compose.yaml declares (podman runs
// them from systemd timers, and there is no systemd here), and writes the
// environment compose.yaml needs: test passwords, free ports on 127.0.0.1,
// and vars.
func newStack(t *testing.T, pm *podman, composeBin string, vars map[string]string) *stack {
	t.Helper()
	for _, line := range strings.Split(routes(t), "\n") {
		if strings.HasPrefix(line, strings.TrimSuffix(composeSubnet, "/24")) {
			t.Fatalf("compose.yaml's subnet %s is already routed on this machine (%q): another stack is up", composeSubnet, line)
		}
	}
	// conmon's exit command (podman container cleanup, which turns a
	// container that ended from "stopped" into the "exited" compose waits
	// for) refuses a runroot over 50 characters, and the one-shots then
	// never count as completed: a long TMPDIR hangs `up`.
	if run := filepath.Join(pm.dir, "run"); len(run) > 50 {
		t.Fatalf("podman's runroot %s is over 50 characters, which its cleanup refuses: use a shorter TMPDIR", run)
	}
	sock := filepath.Join(pm.dir, "docker.sock")
	svc := pm.command(t, "system", "service", "--time=0", "unix://"+sock)
	svc.Stdout, svc.Stderr = io.Discard, io.Discard
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after newPodman's: runs before it, so the store is reset
	// with the service gone.
	t.Cleanup(func() {
		_ = svc.Process.Kill()
		_ = svc.Wait()
	})
	testenv.Eventually(t, 30*time.Second, "podman's API socket", func() bool { return exists(sock) })

	st := &stack{pm: pm, compose: composeBin, ports: map[string]string{}}
	st.env = append(append([]string{}, pm.env...), "DOCKER_HOST=unix://"+sock, "DOCKER_BUILDKIT=0",
		"DOCKER_CONFIG="+filepath.Join(pm.dir, "docker-config"), "COMPOSE_PROJECT_NAME=usersvc")
	for _, k := range []string{"MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "RABBITMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} {
		vars[k] = "test-" + testenv.RandomHex(12)
	}
	for _, k := range []string{"HTTPS_PORT", "HTTP_PORT", "JAEGER_UI_PORT", "RABBITMQ_UI_PORT"} {
		addr := testenv.FreeAddr(t)
		st.ports[k] = addr[strings.LastIndex(addr, ":")+1:]
		vars[k] = st.ports[k]
	}
	vars["PUBLISH_ADDR"] = "127.0.0.1"
	vars["PUBLIC_URL"] = "https://localhost:" + st.ports["HTTPS_PORT"]
	for k, v := range vars {
		st.env = append(st.env, k+"="+v)
	}
	st.files = []string{"-f", filepath.Join(root(t), "deploy", "compose", "compose.yaml"),
		"-f", filepath.Join(root(t), "deploy", "deploytest", "testdata", "compose.standins.yaml")}
	runHealthChecks(t, pm)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := st.try("logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", tail(out, 20000))
		}
		// Whatever a failure left up goes before the store is reset.
		if out, err := st.try("down", "-v", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	return st
}

// runHealthChecks runs `podman healthcheck run` every 5 seconds (at most
// the interval compose.yaml gives any service) on each container whose
// health is not yet known to be good, as podman's systemd timer would, so
// depends_on's service_healthy and `compose ps` work without systemd.
func runHealthChecks(t *testing.T, pm *podman) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			var ids []string
			for _, h := range []string{"starting", "unhealthy"} {
				out, _ := pm.try("ps", "-q", "--filter", "health="+h)
				ids = append(ids, strings.Fields(out)...)
			}
			var checks sync.WaitGroup
			for _, id := range ids {
				checks.Add(1)
				go func() { defer checks.Done(); _, _ = pm.try("healthcheck", "run", id) }()
			}
			checks.Wait()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// run runs docker compose on the stack, failing the test on error.
func (s *stack) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.compose, append(append([]string{}, s.files...), args...)...)
	cmd.Env = s.env
	return s.pm.output(t, cmd)
}

// try runs docker compose on the stack and returns its combined output.
func (s *stack) try(args ...string) (string, error) {
	cmd := exec.Command(s.compose, append(append([]string{}, s.files...), args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// standinImage makes the stand-in of the third-party images
// (testdata/standins/services.Containerfile) in pm's store: loaded from
// the cache when a tarball of the same inputs is there, else built from
// the Debian base (about a minute of apt-get) and saved to the cache in
// place of any earlier one.
func standinImage(t *testing.T, pm *podman, jaegerBin string) string {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "deploytest", "testdata", "standins")
	ctx := filepath.Join(pm.dir, "standin-context")
	copyTree(t, filepath.Join(dir, "services", "entrypoint.sh"), filepath.Join(ctx, "entrypoint.sh"))
	copyTree(t, jaegerBin, filepath.Join(ctx, "jaeger"))
	h := sha256.New()
	for _, f := range []string{filepath.Join(dir, "services.Containerfile"), filepath.Join(ctx, "entrypoint.sh"), filepath.Join(ctx, "jaeger")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	image := "localhost/usersvc-test-standin:" + sum
	cache := os.Getenv(StandinCacheEnv)
	tarball := filepath.Join(cache, "standin-"+sum+".tar")
	if cache != "" && exists(tarball) {
		pm.run(t, "load", "-q", "-i", tarball)
		return image
	}
	pm.run(t, "build", "--pull=never", "--network=host", "--format=docker", "--build-arg", "BASE="+standinBase,
		"-t", image, "-f", filepath.Join(dir, "services.Containerfile"), ctx)
	if cache != "" {
		if err := os.MkdirAll(cache, 0o700); err != nil {
			t.Fatal(err)
		}
		pm.run(t, "save", "-q", "-o", tarball+".partial", image)
		if err := os.Rename(tarball+".partial", tarball); err != nil {
			t.Fatal(err)
		}
		// A gigabyte each: the stand-ins of earlier inputs go.
		old, _ := filepath.Glob(filepath.Join(cache, "standin-*.tar"))
		for _, f := range old {
			if f != tarball {
				_ = os.Remove(f)
			}
		}
	}
	return image
}

// routes is the host's IPv4 routing table.
func routes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	return string(out)
}

// TestComposeStandinsOverride holds testdata/compose.standins.yaml to what
// the README says of it: against compose.yaml alone, every service runs
// the same command, environment, mounts, health check, dependencies and
// networks; only image, entrypoint (the stand-in's, doing what the
// official image's does), pull policy and the init service's build (its
// alpine base cannot be pulled) differ, and the network only gets a bridge
// name of the test's own.
func TestComposeStandinsOverride(t *testing.T) {
	base := loadComposeFiles(t)
	over := loadComposeFiles(t, filepath.Join(root(t), "deploy", "deploytest", "testdata", "compose.standins.yaml"))
	if len(base.Services) != len(over.Services) {
		t.Fatalf("the override changes the services: %d against %d", len(over.Services), len(base.Services))
	}
	for name, b := range base.Services {
		o, ok := over.Services[name]
		if !ok {
			t.Errorf("the override drops %s", name)
			continue
		}
		for _, s := range []*types.ServiceConfig{&b, &o} {
			s.Image, s.Entrypoint, s.PullPolicy, s.Build = "", nil, "", nil
		}
		if !reflect.DeepEqual(b, o) {
			t.Errorf("the override changes more of %s than its image and entrypoint", name)
		}
	}
	for name, b := range base.Networks {
		o := over.Networks[name]
		o.DriverOpts, b.DriverOpts = nil, nil
		if !reflect.DeepEqual(b, o) {
			t.Errorf("the override changes network %s beyond its bridge's name", name)
		}
	}
}

// loadComposeFiles loads compose.yaml and the extra files on it, as
// loadCompose does, with the variables the override needs.
func loadComposeFiles(t *testing.T, extra ...string) *types.Project {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "compose")
	env := []string{"STANDIN_IMAGE=localhost/standin:test", "STANDIN_BRIDGE=usvctest0"}
	for k, v := range readEnvFile(t, filepath.Join(dir, ".env.example")) {
		if v == "" {
			v = "test-secret-" + strings.ToLower(k)
		}
		env = append(env, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(append([]string{filepath.Join(dir, "compose.yaml")}, extra...),
		cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %v: %v", extra, err)
	}
	return p
}
