package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQURL returns the AMQP URL of the test broker,
// USERSVC_TEST_RABBITMQ_URL (e.g. "amqp://guest:guest@127.0.0.1:5672/"),
// or skips the test (fails it under USERSVC_TEST_REQUIRE_ALL=1). The broker
// is shared: tests must use queue names of their own (RandomHex) and delete
// them when done, and must never stop or reconfigure it (see RabbitMQProxy
// and PrivateRabbitMQ).
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	return Need(t, "USERSVC_TEST_RABBITMQ_URL")
}

// RabbitMQProxy puts a Proxy in front of the test broker and returns the
// AMQP URL through it: a test cuts the proxy (Down, Up) to see what a client
// does while the broker is unreachable, and the broker itself stays up for
// everyone else.
func RabbitMQProxy(t testing.TB) (amqpURL string, p *Proxy) {
	t.Helper()
	u, err := url.Parse(RabbitMQURL(t))
	if err != nil {
		t.Fatalf("USERSVC_TEST_RABBITMQ_URL: %v", err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5672")
	}
	p = NewProxy(t, target)
	u.Host = p.Addr()
	return u.String(), p
}

// RabbitMQNode is a RabbitMQ node of one test's own, for what a proxy cannot
// simulate (a resource alarm, a broker-wide setting): its own node name,
// ports and data directory, stopped and removed when the test ends.
type RabbitMQNode struct {
	t    testing.TB
	name string
	URL  string // amqp://guest:guest@127.0.0.1:<port>/
}

// PrivateRabbitMQ starts a RabbitMQ node for this test alone (about 10-30 s
// on a loaded machine). It needs the rabbitmq-server package, which `make
// test` installs; like every server here it skips without
// USERSVC_TEST_RABBITMQ_URL (fails under USERSVC_TEST_REQUIRE_ALL=1).
func PrivateRabbitMQ(t testing.TB) *RabbitMQNode {
	t.Helper()
	RabbitMQURL(t)
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		t.Fatalf("rabbitmq-server not found (make test installs it): %v", err)
	}
	dir := rabbitDir(t)
	ports := freeLocalPorts(t, 2)
	n := &RabbitMQNode{t: t, name: "usersvc-test-" + RandomHex(4) + "@localhost",
		URL: fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", ports[0])}
	conf := fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\n", ports[0])
	writeFile(t, filepath.Join(dir, "rabbitmq.conf"), conf)
	writeFile(t, filepath.Join(dir, "enabled_plugins"), "[].\n")
	chownToRabbitMQ(t, dir)
	logf, err := os.Create(filepath.Join(dir, "server.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("rabbitmq-server")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[1]),
	)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rabbitmq-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { n.stop(cmd, exited) })
	n.waitListening(ports[0], exited, filepath.Join(dir, "server.out"))
	return n
}

// Ctl runs `rabbitmqctl -n <node> args...` against this node and fails the
// test if it fails.
func (n *RabbitMQNode) Ctl(args ...string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-q", "-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (n *RabbitMQNode) waitListening(port int, exited chan error, logPath string) {
	n.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err
			out, _ := os.ReadFile(logPath)
			n.t.Fatalf("private rabbitmq-server exited (%v) before listening:\n%s", err, tail(out, 3000))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("private rabbitmq-server not listening on %d after 2m", port)
		}
	}
}

// stop asks the node to stop, then kills its process group if it lingers.
func (n *RabbitMQNode) stop(cmd *exec.Cmd, exited chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, "rabbitmqctl", "-q", "-n", n.name, "stop").Run()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// rabbitDir makes a data directory the broker can write: Debian's scripts
// drop to the rabbitmq user when started as root, and t.TempDir's parents
// are private to us, so it is a directory of its own, removed at the end.
func rabbitDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usersvc-rabbitmq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chownToRabbitMQ(t testing.TB, dir string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	u, err := user.Lookup("rabbitmq")
	if err != nil {
		return
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("chown %s to rabbitmq: %v", dir, err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeLocalPorts returns n distinct ports on 127.0.0.1 that were free a
// moment ago.
func freeLocalPorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// RabbitMQExchange names an exchange of the test's own on the shared
// broker (prefix and RandomHex) and deletes it when the test ends, whoever
// declared it: the code under test (a relay, a feed) declares its exchange
// itself, and a durable one outlives every connection. An exchange never
// declared is no error.
func RabbitMQExchange(t testing.TB, amqpURL, prefix string) string {
	t.Helper()
	name := prefix + RandomHex(6)
	RabbitMQCleanup(t, amqpURL, func(ch *amqp.Channel) {
		var ae *amqp.Error
		if err := ch.ExchangeDelete(name, false, false); err != nil && !(errors.As(err, &ae) && ae.Code == amqp.NotFound) {
			t.Errorf("cleanup: delete exchange %s: %v", name, err)
		}
	})
	return name
}

// RabbitMQCleanup runs del on a channel of its own to the broker at
// amqpURL when the test ends, to delete what the test left on the shared
// broker. A channel is closed after a failed operation, so del should stop
// at its first error.
func RabbitMQCleanup(t testing.TB, amqpURL string, del func(ch *amqp.Channel)) {
	t.Helper()
	t.Cleanup(func() {
		conn, err := amqp.Dial(amqpURL)
		if err != nil {
			t.Errorf("cleanup: dial RabbitMQ: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		del(ch)
	})
}
