package deploytest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/usersvc/usersvc/internal/testenv"
)

// TestKubelet deploys the dev overlay on a real single-node cluster
// (startCluster: the control plane, a kubelet on containerd, kube-proxy,
// CoreDNS) by running docs/deploy.md's commands for it, in order, as an
// operator would: the same text TestDeployDocsOrder checks, so the docs
// cannot drift from what runs. The images are built here, none pulled:
// the service's from the real Dockerfile (buildUsersvcImage), MySQL,
// Redis, RabbitMQ and etcd as stand-ins from Debian's packages
// (testdata/standins/servers.Containerfile), the pause image from
// testdata/pause; all are loaded with `ctr images import` under the names
// the overlay uses, so its default pull policy (IfNotPresent) never pulls.
// Then every pod must be Ready, `usersvc migrate` must have run as the
// Job, Pod Security "restricted" must be enforced on the namespace, and
// the README's walk must pass through the gateway's Service address. Then
// a rolling update of the service under load must fail no request, nor
// must an eviction the PodDisruptionBudget admits (it refuses a second), and
// the prod overlay is applied server-side (a server dry run: see
// prodServerSide).
func TestKubelet(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kubelet and containerd: linux only")
	}
	rootfs := testenv.Need(t, DebianRootfsEnv)
	pm := newPodman(t, testenv.Need(t, PodmanEnv))
	dev := render(t, "dev")
	images := nodeImages(t, pm, rootfs, dev)

	started := time.Now()
	c := startCluster(t)
	t.Logf("cluster up (node Ready, DNS ready) in %s", time.Since(started).Round(100*time.Millisecond))
	c.loadImages(t, images)
	c.persistentVolumes(t, dev)
	t.Cleanup(func() { c.deleteNamespaces(t, "usersvc-dev", "usersvc") }) // first of the cleanups: pods go while the node runs

	c.runDocs(t, "### The dev overlay")
	c.kubectl(t, nil, "-n", "usersvc-dev", "wait", "--for=condition=Ready", "pod", "--all",
		"--field-selector=status.phase!=Succeeded", "--timeout=5m")
	t.Logf("cluster start to every pod Ready: %s", time.Since(started).Round(time.Second))
	if out := c.kubectl(t, nil, "-n", "usersvc-dev", "get", "job/usersvc-migrate", "-o", "jsonpath={.status.succeeded}"); out != "1" {
		t.Errorf("the migrate Job: %q pods succeeded, want 1", out)
	}
	c.checkPodSecurity(t)
	w := walk(t, "http://"+c.serviceAddr(t, "usersvc-dev", "usersvc-gateway"))
	c.rollingUpdate(t, w, "deploy/usersvc-service")
	c.evictUnderBudget(t, w)
	c.prodServerSide(t)
}

// nodeImages builds the images the dev overlay names and the pause image
// with podman, tagged with the fully qualified names the CRI resolves the
// overlay's to, and saves them into one archive for `ctr images import`.
func nodeImages(t *testing.T, pm *podman, rootfs string, dev rendered) string {
	t.Helper()
	repo := root(t)
	start := time.Now()
	buildUsersvcImage(t, pm, rootfs, "9.9.9-kubelet-test", testImage)
	ctx := filepath.Join(pm.dir, "servers-context")
	copyTree(t, filepath.Join(repo, "deploy/deploytest/testdata/standins"), ctx)
	var names []string
	// One stand-in per StatefulSet: the Containerfile's target of its name.
	for _, obj := range dev.objects {
		s, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		for _, ctr := range s.Spec.Template.Spec.Containers {
			name := qualifiedImage(ctr.Image)
			pm.run(t, "build", "--pull=never", "--network=host", "--format=docker", "--build-arg", "BASE="+standinBase,
				"--target", s.Name, "-t", name, "-f", filepath.Join(ctx, "servers.Containerfile"), ctx)
			names = append(names, name)
		}
	}
	for _, obj := range dev.objects {
		if d, ok := obj.(*appsv1.Deployment); ok {
			name := qualifiedImage(d.Spec.Template.Spec.Containers[0].Image)
			pm.run(t, "tag", testImage, name)
			names = append(names, name)
			break
		}
	}
	ctx = filepath.Join(pm.dir, "pause-context")
	copyTree(t, filepath.Join(repo, "deploy/deploytest/testdata/pause/Containerfile"), filepath.Join(ctx, "Containerfile"))
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctx, "pause"), "./testdata/pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	pm.output(t, build)
	pm.run(t, "build", "--pull=never", "--network=none", "--format=docker", "-t", pauseImage, ctx)
	names = append(names, pauseImage)
	archive := filepath.Join(pm.dir, "images.tar")
	pm.run(t, append([]string{"save", "-m", "--format=docker-archive", "-o", archive}, names...)...)
	t.Logf("images built and saved in %s: %s", time.Since(start).Round(time.Second), strings.Join(names, " "))
	return archive
}

// qualifiedImage is an image reference as the CRI normalises it
// ("redis:7" → "docker.io/library/redis:7"), which is the name podman must
// give it (podman would put a short name under localhost/).
func qualifiedImage(ref string) string {
	first, rest, found := strings.Cut(ref, "/")
	switch {
	case !found:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	default:
		return "docker.io/" + first + "/" + rest
	}
}

// loadImages imports the archive into containerd's CRI namespace.
func (c *cluster) loadImages(t *testing.T, archive string) {
	t.Helper()
	start := time.Now()
	if out, err := c.ctr("images", "import", archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	t.Logf("images imported into containerd in %s", time.Since(start).Round(100*time.Millisecond))
}

// persistentVolumes provides what a cluster's storage provisioner would:
// one hostPath PersistentVolume (in the test's directory) per claim of
// each StatefulSet's single replica, bound to that claim in advance and
// owned by the pod's user (hostPath takes no fsGroup).
func (c *cluster) persistentVolumes(t *testing.T, r rendered) {
	t.Helper()
	var pvs []string
	for _, obj := range r.objects {
		s, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		uid := int64(0)
		if sc := s.Spec.Template.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		for _, tmpl := range s.Spec.VolumeClaimTemplates {
			claim := fmt.Sprintf("%s-%s-0", tmpl.Name, s.Name)
			dir := filepath.Join(c.dir, "volumes", claim)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, int(uid), int(uid)); err != nil {
				t.Fatal(err)
			}
			pvs = append(pvs, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: usersvc-test-%s}
spec:
  capacity: {storage: %s}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: %s, name: %s}
  hostPath: {path: %q, type: Directory}
`, claim, tmpl.Spec.Resources.Requests.Storage().String(), s.Namespace, claim, dir))
		}
	}
	c.kubectl(t, []byte(strings.Join(pvs, "---\n")), "apply", "-f", "-")
}

// runDocs runs a section of docs/deploy.md's commands (docsShell) one by
// one with bash, in a scratch directory where deploy/ is the repository's
// (the commands name deploy/k8s/overlays/…), with kubectl (the test's,
// against this cluster) and usersvc (the binary from the image) on PATH.
// Each has ten minutes.
func (c *cluster) runDocs(t *testing.T, section string) {
	t.Helper()
	work := t.TempDir()
	bin := filepath.Join(work, ".bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root(t), "deploy"), filepath.Join(work, "deploy")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.kubectlBin, filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}
	copyTree(t, c.usersvcBinary(t), filepath.Join(bin, "usersvc"))
	for _, line := range docsShell(t, section) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", line)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "KUBECONFIG="+c.apiServer.kubeconfig)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		cancel()
		t.Logf("$ %s  (%s)\n%s", line, time.Since(start).Round(100*time.Millisecond), tail(string(out), 1500))
		if err != nil {
			c.describe(t, "usersvc-dev")
			t.Fatalf("docs/deploy.md %q: %s: %v", section, line, err)
		}
	}
}

// usersvcBinary is the usersvc binary of the image the pods run (static,
// so it runs on the host too), for the docs' `usersvc keys generate`.
func (c *cluster) usersvcBinary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(c.dir, "usersvc-bin")
	if err := os.MkdirAll(filepath.Join(dir, "mnt"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := c.ctr("images", "list", "--quiet")
	if err != nil {
		t.Fatalf("ctr images list: %v\n%s", err, out)
	}
	var ref string
	for _, r := range strings.Fields(out) {
		if strings.HasPrefix(r, "docker.io/usersvc/usersvc:") {
			ref = r
		}
	}
	if ref == "" {
		t.Fatalf("no usersvc image in containerd:\n%s", out)
	}
	if out, err := c.ctr("images", "mount", ref, filepath.Join(dir, "mnt")); err != nil {
		t.Fatalf("ctr images mount: %v\n%s", err, out)
	}
	copyTree(t, filepath.Join(dir, "mnt", "usersvc"), filepath.Join(dir, "usersvc"))
	if out, err := c.ctr("images", "unmount", filepath.Join(dir, "mnt")); err != nil {
		t.Errorf("ctr images unmount: %v\n%s", err, out)
	}
	return filepath.Join(dir, "usersvc")
}

// describe logs the namespace's pods and events, for a failed step.
func (c *cluster) describe(t *testing.T, ns string) {
	t.Helper()
	for _, args := range [][]string{{"get", "pods", "-o", "wide"}, {"get", "events", "--sort-by=.lastTimestamp"}, {"describe", "pods"}} {
		out, _ := c.try(nil, append([]string{"-n", ns}, args...)...)
		t.Logf("kubectl -n %s %s:\n%s", ns, strings.Join(args, " "), tail(out, 6000))
	}
}

// deleteNamespaces deletes the namespaces and waits until their pods are
// gone, so the kubelet stops every container and the CNI plugin releases
// every address while the node still runs.
func (c *cluster) deleteNamespaces(t *testing.T, names ...string) {
	if t.Failed() {
		for _, ns := range names {
			c.describe(t, ns)
		}
	}
	for _, ns := range names {
		if out, err := c.try(nil, "delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=3m"); err != nil {
			t.Errorf("delete namespace %s: %v\n%s", ns, err, out)
		}
	}
}

// checkPodSecurity: the namespace enforces the restricted profile, and the
// API server does refuse a pod that breaks it there.
func (c *cluster) checkPodSecurity(t *testing.T) {
	t.Helper()
	label := c.kubectl(t, nil, "get", "namespace", "usersvc-dev", "-o", `jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`)
	if label != "restricted" {
		t.Errorf("namespace usersvc-dev enforces Pod Security %q, want restricted", label)
	}
	pod := []byte(`apiVersion: v1
kind: Pod
metadata: {name: as-root, namespace: usersvc-dev}
spec: {containers: [{name: c, image: docker.io/usersvc/usersvc:0.1.0, securityContext: {runAsUser: 0}}]}
`)
	if out, err := c.try(pod, "create", "-f", "-"); err == nil || !strings.Contains(out, `violates PodSecurity "restricted`) {
		t.Errorf("a pod running as root was not refused in usersvc-dev: %v\n%s", err, out)
	}
}

// serviceAddr is a Service's cluster IP and first port, which kube-proxy's
// rules make reachable from the host.
func (c *cluster) serviceAddr(t *testing.T, ns, name string) string {
	t.Helper()
	out := c.kubectl(t, nil, "-n", ns, "get", "service", name, "-o", `jsonpath={.spec.clusterIP}:{.spec.ports[0].port}`)
	if !strings.HasPrefix(out, "10.214.") {
		t.Fatalf("service %s/%s has address %q, not one of %s", ns, name, out, serviceSubnet)
	}
	return out
}
