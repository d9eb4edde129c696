package deploytest

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// checkGone: after `compose down -v`, nothing of the stack is left in the
// store (no container, volume or network but podman's default) and its
// bridge is gone from the host.
func (s *stack) checkGone(t *testing.T, bridge string) {
	t.Helper()
	if out := strings.TrimSpace(s.pm.run(t, "ps", "-a", "--format", "{{.Names}}")); out != "" {
		t.Errorf("containers left after compose down: %s", out)
	}
	if out := strings.TrimSpace(s.pm.run(t, "volume", "ls", "--format", "{{.Name}}")); out != "" {
		t.Errorf("volumes left after compose down -v: %s", out)
	}
	if out := strings.Fields(s.pm.run(t, "network", "ls", "--format", "{{.Name}}")); !slices.Equal(out, []string{"podman"}) {
		t.Errorf("networks after compose down: %v, want only podman's default", out)
	}
	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
		t.Errorf("the stack's bridge %s is still there:\n%s", bridge, out)
	}
}

// iptablesTables are the tables CNI's bridge, portmap and firewall plugins
// write to.
var iptablesTables = []string{"filter", "nat"}

// watchHost records what the stack's network changes on the host, and puts
// it back at the end: the iptables chains and rules CNI adds (per-container
// chains go with the containers; the CNI-* chains it hangs them on, and the
// isolation rules naming the bridge, stay), CNI's IPAM state in
// /var/lib/cni and dnsname's in /run/containers. Only what was not there
// before and belongs to CNI or to this test's bridge is removed; then
// nothing of it may be left.
func watchHost(t *testing.T, bridge string) {
	t.Helper()
	before := map[string][]string{}
	for _, table := range iptablesTables {
		before[table] = iptablesLines(t, table)
	}
	created := map[string]bool{}
	for _, d := range []string{"/var/lib/cni", "/var/lib/cni/networks", "/var/lib/cni/results", "/run/containers",
		"/run/containers/cni", "/run/containers/cni/dnsname"} {
		created[d] = !exists(d)
	}
	t.Cleanup(func() {
		for _, table := range iptablesTables {
			restoreIptables(t, table, before[table], bridge)
		}
		_ = os.RemoveAll("/var/lib/cni/networks/usersvc_usersvc")
		_ = os.RemoveAll("/run/containers/cni/dnsname/usersvc_usersvc")
		// Deepest first; only directories the test made, and only empty.
		for _, d := range []string{"/run/containers/cni/dnsname", "/run/containers/cni", "/run/containers",
			"/var/lib/cni/results", "/var/lib/cni/networks", "/var/lib/cni"} {
			if created[d] {
				if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
					t.Errorf("%s, made by the stack: %v", d, err)
				}
			}
		}
	})
}

// iptablesLines is `iptables-save -t table` without its comments and
// packet counters.
func iptablesLines(t *testing.T, table string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", table).Output()
	if err != nil {
		t.Fatalf("iptables-save -t %s: %v", table, err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") || l == "COMMIT" || strings.HasPrefix(l, "*") {
			continue
		}
		if strings.HasPrefix(l, ":") { // ":CHAIN POLICY [packets:bytes]"
			l = strings.Join(strings.Fields(l)[:2], " ")
		}
		lines = append(lines, l)
	}
	return lines
}

// restoreIptables deletes, in one iptables-restore --noflush, the rules and
// chains of table that were not in before and are CNI's or name bridge,
// and then fails the test if any such rule or chain is left.
func restoreIptables(t *testing.T, table string, before []string, bridge string) {
	t.Helper()
	ours := func(l string) bool { return strings.Contains(l, "CNI-") || strings.Contains(l, bridge) }
	var rules, chains []string
	for _, l := range iptablesLines(t, table) {
		if slices.Contains(before, l) || !ours(l) {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "-A "); ok {
			rules = append(rules, "-D "+rest)
		} else if strings.HasPrefix(l, ":") {
			chains = append(chains, strings.Fields(l[1:])[0])
		}
	}
	if len(rules)+len(chains) == 0 {
		return
	}
	script := "*" + table + "\n" + strings.Join(rules, "\n") + "\n"
	for _, c := range chains {
		script += "-F " + c + "\n"
	}
	for _, c := range chains {
		script += "-X " + c + "\n"
	}
	script += "COMMIT\n"
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("iptables-restore (removing the stack's rules): %v\n%s\n%s", err, out, script)
	}
	for _, l := range iptablesLines(t, table) {
		if !slices.Contains(before, l) && ours(l) {
			t.Errorf("iptables -t %s: left behind: %s", table, l)
		}
	}
	t.Logf("iptables -t %s: removed %d rules and %d chains CNI left", table, len(rules), len(chains))
}
