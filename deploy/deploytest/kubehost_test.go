package deploytest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// nodeSysctls are the kernel settings the kubelet (its kernel tunables),
// kube-proxy (conntrack, route_localnet) and the CNI bridge plugin
// (forwarding) may change on the host; hostState puts back any that moved.
var nodeSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/ipv6/conf/all/forwarding",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
}

// nodePaths are host paths a Kubernetes node's parts create outside the
// directories the test gives them (containerd's shim sockets, the
// kubelet's defaults): what was not there before the test is removed after
// it, mounts beneath first. /var/lib/cni and /run/netns are shared with
// podman (which another test may be running): only this node's entries
// go, and the directories when that leaves them empty.
var nodePaths = []string{
	"/run/containerd", "/var/lib/containerd", "/opt/containerd",
	"/var/lib/kubelet", "/etc/kubernetes", "/var/log/pods", "/var/log/containers", "/etc/cni",
}

// hostState is what the host looked like before the cluster started.
type hostState struct {
	cgroups  []string // the k8s.io cgroups (containerd's parent for pods) that were not there
	sysctls  map[string]string
	iptables map[string]string // iptables-save and ip6tables-save output, by command
	paths    map[string]bool   // nodePaths that existed
	netns    map[string]bool   // entries of /run/netns
}

// recordHost notes the host's state and registers, before anything else
// of the cluster, the cleanup that restores it: it runs last, after every
// process is stopped.
func recordHost(t *testing.T) {
	t.Helper()
	h := &hostState{sysctls: map[string]string{}, iptables: map[string]string{}, paths: map[string]bool{}, netns: map[string]bool{}}
	for _, s := range nodeSysctls {
		if b, err := os.ReadFile(filepath.Join("/proc/sys", s)); err == nil {
			h.sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	for _, c := range []string{"iptables-save", "ip6tables-save"} {
		h.iptables[c] = iptablesSave(t, c)
	}
	for _, p := range append(nodePaths, "/run/netns", "/var/lib/cni", "/var/lib/cni/results") {
		h.paths[p] = exists(p)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		h.netns[e.Name()] = true
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, c := range cgroups {
		if p := filepath.Join(c, "k8s.io"); !exists(p) {
			h.cgroups = append(h.cgroups, p)
		}
	}
	t.Cleanup(func() { h.restore(t) })
}

// restore puts the host back: sysctls, the KUBE-* iptables chains and the
// rules that jump to them, network namespaces, containerd's k8s.io cgroups
// and paths the test made.
func (h *hostState) restore(t *testing.T) {
	for s, v := range h.sysctls {
		p := filepath.Join("/proc/sys", s)
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != v {
			t.Logf("sysctl %s: %s → %s (restored)", strings.ReplaceAll(s, "/", "."), strings.TrimSpace(string(b)), v)
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Errorf("restore sysctl %s: %v", s, err)
			}
		}
	}
	for c, before := range h.iptables {
		if script := kubeRulesAdded(before, iptablesSave(t, c)); script != "" {
			restore := exec.Command(strings.TrimSuffix(c, "-save")+"-restore", "--noflush")
			restore.Stdin = strings.NewReader(script)
			if out, err := restore.CombinedOutput(); err != nil {
				t.Errorf("remove the KUBE-* rules left behind: %v\n%s\n%s", err, out, script)
			} else {
				t.Logf("%s: removed what the node left:\n%s", c, script)
			}
		}
	}
	// containerd's CRI names its network namespaces cni-<id>.
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if !h.netns[e.Name()] && strings.HasPrefix(e.Name(), "cni-") {
			p := filepath.Join("/run/netns", e.Name())
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			if err := os.Remove(p); err != nil {
				t.Errorf("network namespace %s left: %v", p, err)
			}
		}
	}
	// The CNI result cache keeps one file per attachment, named after the
	// network.
	results, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*")
	for _, p := range results {
		if err := os.Remove(p); err != nil {
			t.Errorf("CNI result %s left: %v", p, err)
		}
	}
	for _, d := range []string{"/run/netns", "/var/lib/cni/results", "/var/lib/cni"} {
		if ents, err := os.ReadDir(d); !h.paths[d] && err == nil && len(ents) == 0 {
			_ = syscall.Unmount(d, syscall.MNT_DETACH) // iproute2 makes /run/netns a mount of itself
			_ = os.Remove(d)
		}
	}
	for _, c := range h.cgroups {
		removeCgroup(t, c)
	}
	for _, p := range nodePaths {
		if !h.paths[p] && exists(p) {
			unmountUnder(t, p)
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("remove %s, made by the node: %v", p, err)
			}
		}
	}
}

// iptablesSave is the ruleset of one family (empty when the command is
// missing, as ip6tables may be).
func iptablesSave(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command(cmd).Output()
	if err != nil {
		t.Logf("%s: %v", cmd, err)
	}
	return string(out)
}

// kubeRulesAdded is an iptables-restore --noflush script that removes what
// after has and before had not among the KUBE-* chains and the rules of
// other chains that jump to them; "" when nothing is left. Rules of chains
// the test did not make are left alone. kube-proxy --cleanup removes its
// own; what is left here is the kubelet's (KUBE-FIREWALL,
// KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), which has no cleanup mode.
func kubeRulesAdded(before, after string) string {
	seen := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		seen[l] = true
	}
	var script []string
	table := ""
	var dels, chains []string
	flush := func() {
		if len(dels)+len(chains) > 0 {
			script = append(script, "*"+table)
			script = append(script, dels...)
			for _, c := range chains {
				script = append(script, "-F "+c)
			}
			for _, c := range chains {
				script = append(script, "-X "+c)
			}
			script = append(script, "COMMIT")
		}
		dels, chains = nil, nil
	}
	sc := bufio.NewScanner(strings.NewReader(after))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "*"):
			flush()
			table = l[1:]
		case strings.HasPrefix(l, ":KUBE-") && !seen[l]:
			chains = append(chains, strings.Fields(l[1:])[0])
		case strings.HasPrefix(l, "-A ") && !seen[l] && !strings.HasPrefix(l, "-A KUBE-") && strings.Contains(l, " KUBE-"):
			dels = append(dels, "-D "+l[3:])
		}
	}
	flush()
	if len(script) == 0 {
		return ""
	}
	return strings.Join(script, "\n") + "\n"
}

// unmountUnder unmounts every mount at or below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", p, err)
		}
	}
}

// removeCgroup removes a cgroup directory the node's containers were put
// under, children first (a cgroup goes with rmdir, and only when empty).
func removeCgroup(t *testing.T, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // not made, or gone
	}
	for _, e := range ents {
		if e.IsDir() {
			removeCgroup(t, filepath.Join(dir, e.Name()))
		}
	}
	if err := syscall.Rmdir(dir); err != nil {
		t.Errorf("cgroup %s left: %v", dir, err)
	}
}
