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
// it back at the end: the iptables rules and chains CNI adds (per-container
// chains go with the containers; the isolation rules naming the bridge,
// and the CNI-* chains it hangs everything on, stay), CNI's IPAM state in
// /var/lib/cni and dnsname's in /run/containers. Only what was not there
// before and is this test's is removed (restoreIptables); then nothing of
// it may be left.
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

// cniScaffolding are the chains CNI's firewall and portmap plugins hang
// every network's rules on; they stay when the last network goes.
var cniScaffolding = []string{"CNI-ADMIN", "CNI-FORWARD", "CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2",
	"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

// restoreIptables puts table back as it was before the stack: first the
// rules that name the test's bridge, then — when they were not there before
// and hold nothing of another CNI user's (another bridge, a container's
// chain) — the scaffolding chains and the jumps to them. It fails the test
// if a rule naming the bridge, or scaffolding it made and no one else uses,
// is left.
func restoreIptables(t *testing.T, table string, before []string, bridge string) {
	t.Helper()
	var script []string
	for _, l := range iptablesLines(t, table) {
		if rest, ok := strings.CutPrefix(l, "-A "); ok && !slices.Contains(before, l) && strings.Contains(l, bridge) {
			script = append(script, "-D "+rest)
		}
	}
	iptablesRestore(t, table, script)
	n := len(script)

	script = nil
	var made, flush, drop []string
	for _, c := range cniScaffolding {
		if l := ":" + c + " -"; slices.Contains(iptablesLines(t, table), l) && !slices.Contains(before, l) {
			made = append(made, c)
		}
	}
	shared := false
	for _, l := range iptablesLines(t, table) {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "-A" || slices.Contains(before, l) {
			continue
		}
		target := f[len(f)-1]
		switch {
		case slices.Contains(made, f[1]) && (strings.Contains(l, " -i ") || strings.Contains(l, " -o ") ||
			!(slices.Contains(made, target) || target == "RETURN" || target == "MASQUERADE" || strings.Contains(l, "-j MARK"))):
			shared = true // another network's rule, or a jump to a container's chain
		case !slices.Contains(made, f[1]) && slices.Contains(made, target):
			drop = append(drop, "-D "+strings.TrimPrefix(l, "-A "))
		}
	}
	removed := 0
	if len(made) > 0 && !shared {
		removed = len(made)
		for _, c := range made {
			flush = append(flush, "-F "+c)
			script = append(script, "-X "+c)
		}
		iptablesRestore(t, table, append(append(drop, flush...), script...))
	} else if shared {
		t.Logf("iptables -t %s: CNI's chains %v are in use by another network too: left", table, made)
	}
	for _, l := range iptablesLines(t, table) {
		if !slices.Contains(before, l) && (strings.Contains(l, bridge) || (removed > 0 && strings.Contains(l, "CNI-"))) {
			t.Errorf("iptables -t %s: left behind: %s", table, l)
		}
	}
	t.Logf("iptables -t %s: removed %d rules naming %s, and %d chains of CNI's that no one else uses", table, n, bridge, removed)
}

// iptablesRestore applies iptables commands (-D, -F, -X) to table in one
// iptables-restore --noflush, which parses their quoting as iptables-save
// wrote it.
func iptablesRestore(t *testing.T, table string, cmds []string) {
	t.Helper()
	if len(cmds) == 0 {
		return
	}
	script := "*" + table + "\n" + strings.Join(cmds, "\n") + "\nCOMMIT\n"
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("iptables-restore: %v\n%s\n%s", err, out, script)
	}
}
