package deploytest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// The binaries of the single-node cluster, built once per version by
// scripts/opstools.sh (kubelet, kube-scheduler, kube-controller-manager,
// kube-proxy from the same wrapper module as kube-apiserver; coredns from
// deploy/k8s/test/coredns); containerd, ctr, runc and the CNI plugins are
// Debian's (scripts/services.sh installs them).
const (
	KubeletEnv               = "USERSVC_TEST_KUBELET"
	KubeSchedulerEnv         = "USERSVC_TEST_KUBE_SCHEDULER"
	KubeControllerManagerEnv = "USERSVC_TEST_KUBE_CONTROLLER_MANAGER"
	KubeProxyEnv             = "USERSVC_TEST_KUBE_PROXY"
	CoreDNSEnv               = "USERSVC_TEST_COREDNS"
)

// The node's network: a bridge of its own on private subnets that nothing
// on this machine routes (checked before start). The bridge's address is
// the pods' gateway, the node's IP and the cluster DNS server's.
const (
	podBridge     = "usvck8s0"
	podSubnet     = "10.213.0.0/24"
	nodeIP        = "10.213.0.1"
	serviceSubnet = "10.214.0.0/24"
	cniNetwork    = "usersvc-test"
	nodeName      = "usersvc-test-node"
	pauseImage    = "localhost/usersvc-test/pause:1"
)

// cluster is a real single-node Kubernetes: kube-apiserver (with etcd),
// kube-controller-manager, kube-scheduler, a kubelet on containerd with
// the CNI bridge plugin, kube-proxy in iptables mode and CoreDNS. Every
// process runs on the host in its own process group with its state in the
// test's temporary directory; the control plane listens on 127.0.0.1, the
// kubelet and the DNS server on the bridge's private address.
type cluster struct {
	*apiServer
	dir, ctrSock string
}

// startCluster starts the node and waits until it is Ready and the cluster
// DNS answers. The host's state is recorded first and put back when the
// test ends (recordHost); images are loaded with loadImages afterwards.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	bins := map[string]string{}
	for _, e := range []string{KubeAPIServerEnv, KubeletEnv, KubeSchedulerEnv, KubeControllerManagerEnv, KubeProxyEnv, CoreDNSEnv} {
		bins[e] = testenv.Need(t, e)
	}
	if os.Geteuid() != 0 {
		t.Fatal("a kubelet and containerd need root")
	}
	if out, _ := exec.Command("ip", "route", "show", "match", nodeIP).Output(); strings.Contains(string(out), "10.21") {
		t.Fatalf("%s is already routed on this machine (another run?): %s", podSubnet, out)
	}
	recordHost(t)
	c := &cluster{dir: t.TempDir()}
	c.bridge(t)
	c.containerd(t)
	c.apiServer = startAPIServer(t, bins[KubeAPIServerEnv], "--service-cluster-ip-range="+serviceSubnet,
		"--kubelet-preferred-address-types=InternalIP") // the node's name resolves nowhere
	kc := c.writeKubeconfig(t)
	start(t, "kube-controller-manager", exec.Command(bins[KubeControllerManagerEnv], "--kubeconfig="+kc,
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(c.apiServer.dir, "sa.key"),
		"--root-ca-file="+filepath.Join(c.apiServer.dir, "certs", "apiserver.crt"),
		"--service-cluster-ip-range="+serviceSubnet, "--v=0"))
	start(t, "kube-scheduler", exec.Command(bins[KubeSchedulerEnv], "--kubeconfig="+kc,
		"--leader-elect=false", "--secure-port=0", "--v=0"))
	c.kubelet(t, bins[KubeletEnv], kc)
	c.kubeProxy(t, bins[KubeProxyEnv], kc)
	c.coreDNS(t, bins[CoreDNSEnv], kc)
	c.kubectl(t, nil, "wait", "--for=create", "node/"+nodeName, "--timeout=120s")
	c.kubectl(t, nil, "wait", "--for=condition=Ready", "node/"+nodeName, "--timeout=180s")
	return c
}

// bridge makes the pods' bridge with the node's address before anything
// needs it (the DNS server binds to that address; the CNI plugin takes
// the bridge as it finds it) and removes it at the end.
func (c *cluster) bridge(t *testing.T) {
	t.Helper()
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", podBridge, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "delete", podBridge).CombinedOutput(); err != nil {
			t.Errorf("remove bridge %s: %v\n%s", podBridge, err, out)
		}
	})
	run("addr", "add", nodeIP+"/24", "dev", podBridge)
	run("link", "set", podBridge, "up")
}

// containerd runs Debian's containerd with its root, state, socket, CNI
// configuration and IPAM store in the test's directory. The cleanup it
// registers runs after containerd stopped: it kills any shim still
// serving this containerd (with its containers) and unmounts what is left
// under the directory.
func (c *cluster) containerd(t *testing.T) {
	t.Helper()
	dir := filepath.Join(c.dir, "containerd")
	for _, d := range []string{"cni", "ipam", "opt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c.ctrSock = filepath.Join(dir, "containerd.sock")
	writeFile(t, filepath.Join(dir, "cni", "10-"+cniNetwork+".conflist"), fmt.Sprintf(`{
  "cniVersion": "1.0.0", "name": %q,
  "plugins": [{"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}],
             "dataDir": %q}}]
}`, cniNetwork, podBridge, podSubnet, nodeIP, filepath.Join(dir, "ipam")))
	conf := filepath.Join(dir, "config.toml")
	writeFile(t, conf, strings.NewReplacer("@DIR@", dir, "@PAUSE@", pauseImage).Replace(containerdConfig))
	t.Cleanup(func() {
		killShims(t, c.ctrSock)
		unmountUnder(t, c.dir)
	})
	start(t, "containerd", exec.Command(tool(t, "containerd"), "--config", conf))
	testenv.Eventually(t, 30*time.Second, "containerd's socket", func() bool { return exists(c.ctrSock) })
	t.Cleanup(func() { c.removeTasks(t) }) // runs while containerd still does
}

// containerdConfig: CRI with runc on cgroupfs, the overlay snapshotter,
// the locally built pause image, and restrict_oom_score_adj (without it
// every sandbox fails here: the test cannot lower OOM scores).
const containerdConfig = `version = 2
root = "@DIR@/root"
state = "@DIR@/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "@DIR@/containerd.sock"
[ttrpc]
  address = "@DIR@/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "@DIR@/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "@PAUSE@"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "@DIR@/cni"
    max_conf_num = 1
`

// ctr runs Debian's ctr against the test's containerd, in the namespace
// the CRI uses.
func (c *cluster) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", c.ctrSock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

// removeTasks kills and removes whatever containers the kubelet left (it
// normally leaves none: the namespace is deleted first).
func (c *cluster) removeTasks(t *testing.T) {
	out, err := c.ctr("tasks", "list", "--quiet")
	if err != nil {
		t.Logf("ctr tasks list: %v\n%s", err, out)
		return
	}
	for _, id := range strings.Fields(out) {
		t.Logf("container %s still running at the end: killed", id)
		_, _ = c.ctr("tasks", "kill", "--signal", "SIGKILL", id)
	}
	ids, _ := c.ctr("containers", "list", "--quiet")
	for _, id := range strings.Fields(ids) {
		if out, err := c.ctr("tasks", "delete", "--force", id); err != nil && !strings.Contains(out, "not found") {
			t.Logf("ctr tasks delete %s: %v\n%s", id, err, out)
		}
		_, _ = c.ctr("containers", "delete", id)
	}
}

// killShims kills the containerd-shim processes serving the socket (they
// leave containerd's process group on purpose) and what runs under them.
func killShims(t *testing.T, sock string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), sock) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil {
			t.Logf("shim %d (%s) still running: killed", pid, strings.ReplaceAll(string(b), "\x00", " "))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// writeKubeconfig writes the kubeconfig the node's parts, the docs'
// commands and CoreDNS use: the admin token (system:masters) over the
// apiserver's self-signed certificate.
func (c *cluster) writeKubeconfig(t *testing.T) string {
	t.Helper()
	writeFile(t, c.apiServer.kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, c.url, c.token))
	return c.apiServer.kubeconfig
}

// kubelet starts the kubelet with the settings this machine needs (cgroup
// v1 on cgroupfs without QoS cgroups, swap allowed) and the cluster DNS at
// the bridge's address; it serves on that private address.
func (c *cluster) kubelet(t *testing.T, bin, kc string) {
	t.Helper()
	dir := filepath.Join(c.dir, "kubelet")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	healthz := testenv.FreePort(t)
	conf := filepath.Join(dir, "config.yaml")
	writeFile(t, conf, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
address: %s
port: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %s
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: ""
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, c.ctrSock, filepath.Join(dir, "logs"), nodeIP, testenv.FreePort(t), healthz, nodeIP))
	start(t, "kubelet", exec.Command(bin, "--kubeconfig="+kc, "--config="+conf, "--root-dir="+filepath.Join(dir, "root"),
		"--hostname-override="+nodeName, "--node-ip="+nodeIP, "--v=0"))
	waitHTTP(t, &http.Client{Timeout: time.Second}, "http://127.0.0.1:"+healthz+"/healthz", 120*time.Second)
}

// kubeProxy runs kube-proxy in iptables mode. Every Service connection is
// masqueraded (the bridge does not pass through iptables here, so a reply
// must come back through the host), NodePorts open only on the bridge's
// address, conntrack settings are left as they are. The cleanup it
// registers runs after kube-proxy stopped: `kube-proxy --cleanup` removes
// its rules (hostState checks that nothing KUBE-* is left).
func (c *cluster) kubeProxy(t *testing.T, bin, kc string) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "--cleanup", "--proxy-mode=iptables", "--v=0").CombinedOutput(); err != nil {
			t.Logf("kube-proxy --cleanup: %v\n%s", err, tail(string(out), 2000))
		}
	})
	healthz := testenv.FreePort(t)
	start(t, "kube-proxy", exec.Command(bin, "--kubeconfig="+kc, "--hostname-override="+nodeName,
		"--proxy-mode=iptables", "--masquerade-all", "--cluster-cidr="+podSubnet,
		"--nodeport-addresses="+nodeIP+"/32", "--bind-address=127.0.0.1",
		"--healthz-bind-address=127.0.0.1:"+healthz, "--metrics-bind-address=127.0.0.1:"+testenv.FreePort(t),
		"--conntrack-max-per-core=0", "--conntrack-min=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0", "--v=0"))
	waitHTTP(t, &http.Client{Timeout: time.Second}, "http://127.0.0.1:"+healthz+"/livez", 120*time.Second)
}

// coreDNS serves cluster.local from the API (the kubernetes plugin) on the
// bridge's address, port 53: the kubelet hands that address to every pod
// as its nameserver. It runs on the host like the control plane, not as a
// pod (no Service address of its own: pods reach it directly).
func (c *cluster) coreDNS(t *testing.T, bin, kc string) {
	t.Helper()
	health, ready := testenv.FreePort(t), testenv.FreePort(t)
	corefile := filepath.Join(c.dir, "Corefile")
	writeFile(t, corefile, fmt.Sprintf(`.:53 {
    bind %s
    errors
    health 127.0.0.1:%s
    ready 127.0.0.1:%s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    forward . /etc/resolv.conf
}
`, nodeIP, health, ready, kc))
	start(t, "coredns", exec.Command(bin, "-conf", corefile))
	waitHTTP(t, &http.Client{Timeout: time.Second}, "http://127.0.0.1:"+ready+"/ready", 120*time.Second)
}
