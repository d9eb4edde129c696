package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// TestReadmeDistributedBlock runs the README's "Running the processes
// separately" commands as written — migrate, service, API, worker and
// gateway in the background, the first admin last — with only the
// machine-specific parts substituted (addresses, the database, the keys
// directory, Redis and RabbitMQ, and a namespace so it cannot meet another
// test on the shared broker), then walks the whole API through the gateway
// it started. So the block a newcomer copies cannot rot.
func TestReadmeDistributedBlock(t *testing.T) {
	dsn := testenv.MySQLDSN(t)
	redisURL := testenv.RedisURL(t)
	amqpURL := testenv.RabbitMQURL(t)
	etcd := etcdtest.StartEtcd(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := readmeBlock(t, string(readme), "usersvc gateway")
	dir := t.TempDir()
	gateway, api, grpc := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	for old, new := range map[string]string{
		"127.0.0.1:2379":                     etcd,
		"/etc/usersvc/keys":                  filepath.Join(dir, "keys"),
		"127.0.0.1:8080":                     gateway,
		"127.0.0.1:8081":                     api,
		"127.0.0.1:9090":                     grpc,
		"redis://127.0.0.1:6379/0":           redisURL,
		"amqp://guest:guest@127.0.0.1:5672/": amqpURL,
	} {
		if !strings.Contains(script, old) {
			t.Fatalf("the README's block no longer contains %q; update this test with it:\n%s", old, script)
		}
		script = strings.ReplaceAll(script, old, new)
	}
	dsnRE := regexp.MustCompile(`'[^'@]*@tcp\(127\.0\.0\.1:3306\)/usersvc'`)
	if n := len(dsnRE.FindAllString(script, -1)); n != 2 {
		t.Fatalf("the README's block has %d DSNs, want 2 (migrate's and the processes'):\n%s", n, script)
	}
	script = dsnRE.ReplaceAllString(script, "'"+dsn+"'")

	bin := cluster.Build(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"ADMIN_PASSWORD="+adminPassword,
		// Not the README's business, but this machine's: several
		// processes of one role at once, and another test's namespace.
		"USERSVC_OPS_ADDR=127.0.0.1:0",
		"USERSVC_NAMESPACE="+testNamespace(t, amqpURL),
		// The walk signs in more often than the production limits allow
		// one address.
		"USERSVC_RATE_LOGIN_IP=10000/1m", "USERSVC_RATE_LOGIN_ACCOUNT=10000/1m", "USERSVC_RATE_REGISTER_IP=10000/1m",
		"USERSVC_RATE_RESET_IP=10000/1m", "USERSVC_RATE_RESET_ACCOUNT=10000/1m",
		"USERSVC_ARGON2_MEMORY_KIB=64", "USERSVC_ARGON2_ITERATIONS=1")
	// Its own process group: the block leaves its processes in the
	// background, and the test ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Files, not buffers: the background processes keep their standard
	// output open after the block returns, and Wait would wait for a pipe.
	// stdout holds what the commands print, stderr the processes' logs.
	outFile, logFile := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	stdout, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	out := func() string { b, _ := os.ReadFile(outFile); return string(b) }
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("output of the README's block:\n%s\nlogs:\n%s", out(), logs())
		}
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the README's block failed: %v\n%s\n%s", err, out(), logs())
	}
	// `usersvc admin create`, the block's last command, printed the ID.
	lines := strings.Split(strings.TrimSpace(out()), "\n")
	adminID := lines[len(lines)-1]
	url := "http://" + gateway
	testenv.Eventually(t, time.Minute, "the gateway of the README's block to be ready", func() bool {
		r, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	walk(t, target{url: url, mailDir: filepath.Join(dir, "data", "mail"),
		admin: func(_ cluster.TB, email, password string) string {
			if email != adminEmail || password != adminPassword {
				t.Fatalf("the walk wants admin %s, the README's block made admin@example.com", email)
			}
			return adminID
		}})
}

// readmeBlock returns the ```sh block of the README that contains marker.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme, -1) {
		if strings.Contains(block[1], marker) {
			return block[1]
		}
	}
	t.Fatalf("README.md has no sh block with %q", marker)
	return ""
}

// TestReadmeSDKCodeIsTheExample: every Go block of the README's "Using
// usersvc from your services" is a verbatim excerpt of the example
// service, which TestOrdersExampleRefusesRevokedTokens builds and runs.
func TestReadmeSDKCodeIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Using usersvc from your services\n")
	if !ok {
		t.Fatal("README has no section \"Using usersvc from your services\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var sources string
	for _, f := range []string{"cmd/orders/main.go", "orders.go"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "orders", f))
		if err != nil {
			t.Fatal(err)
		}
		sources += string(b)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) == 0 {
		t.Fatal("the section shows no Go code")
	}
	for _, b := range blocks {
		if !strings.Contains(sources, b[1]) {
			t.Errorf("README shows code that is not the example's:\n%s", b[1])
		}
	}
}
