package deploytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// PodmanEnv names the podman binary (Debian's, run with runc) and
// DebianRootfsEnv a tarball of a minimal Debian root filesystem
// (scripts/opstools.sh debian-rootfs: debootstrap, cached); scripts/test.sh
// provides both.
const (
	PodmanEnv       = "USERSVC_TEST_PODMAN"
	DebianRootfsEnv = "USERSVC_TEST_DEBIAN_ROOTFS"
)

// ImageBuildCacheEnv names a directory kept between runs for the build's
// RUN --mount=type=cache mounts (the Go module and build caches), so a
// second run does not download and compile everything again; without it
// they live and die with the test.
const ImageBuildCacheEnv = "USERSVC_TEST_IMAGE_BUILD_CACHE"

// Names of the images the test makes, all in its own private store.
const (
	standinBase       = "localhost/usersvc-test-base:bookworm"
	standinGolang     = "localhost/usersvc-test-golang:standin"
	standinDistroless = "localhost/usersvc-test-distroless:standin"
	testImage         = "localhost/usersvc-test/usersvc:test"
)

// TestImage builds the repository's Dockerfile for real and runs the image.
// No image registry is reachable here, so the Dockerfile's two base images
// (GO_IMAGE, BASE_IMAGE) are stand-ins built from a debootstrapped Debian
// (testdata/standins); the Dockerfile itself is built unchanged, with
// --pull=never. Then: the image's user is the numeric nonroot, its health
// check is the binary's own; in a container run as that user with a
// read-only root filesystem, `usersvc version` shows the version and commit
// passed in, `usersvc dev` serves over a port published on 127.0.0.1, and
// the HEALTHCHECK command passes. The image's size is held to the goal:
// within 10% of the static binary it carries.
//
// podman runs with runc, a configuration and an image store of its own in
// the test's temporary directory, slirp4netns networking (no bridge,
// iptables rule or CNI state on the host) and host networking for the
// build's downloads; everything is removed at the end.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("podman with runc: linux only")
	}
	rootfs := testenv.Need(t, DebianRootfsEnv)
	pm := newPodman(t, testenv.Need(t, PodmanEnv))
	repo := root(t)

	const version = "9.9.9-image-test"
	commit := strings.TrimSpace(pm.output(t, exec.Command("git", "-C", repo, "rev-parse", "HEAD")))
	buildUsersvcImage(t, pm, rootfs, version, commit)

	var images []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
		}
		// podman shows the docker-format HEALTHCHECK beside Config.
		Healthcheck *struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(pm.run(t, "image", "inspect", testImage)), &images); err != nil || len(images) != 1 {
		t.Fatalf("image inspect: %v (%d images)", err, len(images))
	}
	img := images[0]
	if img.Config.User != "65532:65532" {
		t.Errorf("the image runs as %q, want 65532:65532", img.Config.User)
	}
	if hc := img.Healthcheck; hc == nil || strings.Join(hc.Test, " ") != "CMD /usersvc healthcheck" {
		t.Errorf("the image's health check is %+v, want CMD /usersvc healthcheck", hc)
	}

	// Size: the image against the binary in it (the release build, as
	// `make build` makes it).
	bin := filepath.Join(pm.dir, "usersvc")
	cid := strings.TrimSpace(pm.run(t, "create", testImage))
	pm.run(t, "cp", cid+":/usersvc", bin)
	pm.run(t, "rm", cid)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	over := float64(img.Size-st.Size()) / float64(st.Size()) * 100
	t.Logf("image %.1f MB, the static binary in it %.1f MB: %.1f%% over the binary", mb(img.Size), mb(st.Size()), over)
	if img.Size > st.Size()*110/100 {
		t.Errorf("the image (%d bytes) is more than 10%% over the binary (%d bytes)", img.Size, st.Size())
	}

	// Every container: the image's user, a read-only root filesystem, no
	// capabilities, no new privileges.
	locked := []string{"--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"}

	out := pm.run(t, append(append([]string{"run", "--rm", "--network=none"}, locked...), testImage, "version")...)
	if want := "usersvc " + version + " (commit " + commit + ", "; !strings.HasPrefix(out, want) {
		t.Errorf("usersvc version printed %q, want it to begin %q", out, want)
	}

	// The worker's mail volume, as compose mounts it: an empty named volume
	// on the image's mail directory takes that directory's owner, so the
	// non-root process can write into it (here a key file, which needs no
	// servers; it fails if it cannot write the file).
	out = pm.run(t, append(append([]string{"run", "--rm", "--network=none", "-v", "usersvc-test-mail:/var/lib/usersvc/mail",
		"-e", "USERSVC_JWT_KEYS_DIR=/var/lib/usersvc/mail"}, locked...), testImage, "keys", "generate")...)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{16,}\n$`).MatchString(out) {
		t.Errorf("keys generate into the mail volume printed %q, want the new key's id", out)
	}

	// dev: every role in one process on embedded defaults; its data dir
	// (SQLite, keys, mail) is a tmpfs chowned to the image's user (U), since
	// the root filesystem is read-only. podman logs that it cannot reach
	// systemd for the health check's timer; `podman healthcheck run` below
	// runs the check itself.
	addr := testenv.FreeAddr(t)
	name := "usersvc-image-test-" + strconv.Itoa(os.Getpid())
	pm.run(t, append(append([]string{"run", "-d", "--name", name,
		"--network=slirp4netns:port_handler=slirp4netns", "-p", addr + ":8080",
		"--tmpfs", "/var/lib/usersvc:rw,mode=0700,U"}, locked...), testImage, "dev")...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := pm.try("logs", name)
			t.Logf("container log:\n%s", logs)
		}
	})
	waitHTTP(t, http.DefaultClient, "http://"+addr+"/healthz", 60*time.Second)
	if out, err := pm.try("healthcheck", "run", name); err != nil {
		t.Errorf("podman healthcheck run: %v\n%s", err, out)
	}
	var ctrs []struct {
		State      struct{ Pid int }
		HostConfig struct{ ReadonlyRootfs bool }
	}
	if err := json.Unmarshal([]byte(pm.run(t, "container", "inspect", name)), &ctrs); err != nil || len(ctrs) != 1 {
		t.Fatalf("container inspect: %v", err)
	}
	if !ctrs[0].HostConfig.ReadonlyRootfs {
		t.Errorf("the container's root filesystem is not read-only")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ctrs[0].State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(status)); m == nil || m[1] != "65532" || m[2] != "65532" {
		t.Errorf("usersvc runs as uid %v, want 65532", m)
	}
	// Readiness and the public keys through the published port, not just
	// the probe.
	for _, path := range []string{"/readyz", "/.well-known/jwks.json"} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, res.Status)
		}
	}
	start := time.Now()
	pm.run(t, "stop", "-t", "20", name)
	t.Logf("stopped in %s", time.Since(start).Round(100*time.Millisecond))
}

// buildUsersvcImage builds the repository's Dockerfile, unchanged, into testImage:
// the stand-ins of its two base images first (from the debootstrapped
// Debian in rootfs), then the Dockerfile on the repository as its build
// context (.dockerignore applies). TestImage checks the result; the
// Kubernetes test runs it as pods.
func buildUsersvcImage(t *testing.T, pm *podman, rootfs, version, commit string) {
	t.Helper()
	repo := root(t)
	start := time.Now()
	pm.run(t, "import", rootfs, standinBase)
	t.Logf("base image imported from %s in %s", rootfs, time.Since(start).Round(100*time.Millisecond))

	// The golang stand-in: this machine's Go toolchain (the version the
	// Dockerfile names), CA bundle and GOPROXY on the Debian base.
	goroot := strings.TrimSpace(pm.output(t, exec.Command("go", "env", "GOROOT")))
	gover := strings.TrimSpace(pm.output(t, exec.Command("go", "env", "GOVERSION")))
	goproxy := strings.TrimSpace(pm.output(t, exec.Command("go", "env", "GOPROXY")))
	if want := "go" + dockerfileArg(t, "GO_VERSION"); gover != want {
		t.Fatalf("the host's Go is %s, the Dockerfile's GO_VERSION %s: the stand-in would not be the image it names", gover, want)
	}
	ctx := filepath.Join(pm.dir, "golang-context")
	copyTree(t, goroot, filepath.Join(ctx, "go"))
	copyTree(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(ctx, "ca-certificates.crt"))
	start = time.Now()
	pm.run(t, "build", "--pull=never", "--network=host", "--format=docker",
		"--build-arg", "BASE="+standinBase, "--build-arg", "GOPROXY="+goproxy,
		"-t", standinGolang, "-f", filepath.Join(repo, "deploy/deploytest/testdata/standins/golang.Containerfile"), ctx)
	ctx = filepath.Join(pm.dir, "distroless-context")
	copyTree(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(ctx, "ca-certificates.crt"))
	pm.run(t, "build", "--pull=never", "--network=none", "--format=docker", "--build-arg", "BASE="+standinBase,
		"-t", standinDistroless, "-f", filepath.Join(repo, "deploy/deploytest/testdata/standins/distroless.Containerfile"), ctx)
	t.Logf("stand-ins of the base images built in %s", time.Since(start).Round(100*time.Millisecond))

	// --format=docker: the OCI format has no HEALTHCHECK.
	build := pm.command(t, "build", "--pull=never", "--network=host", "--format=docker",
		"--build-arg", "GO_IMAGE="+standinGolang, "--build-arg", "BASE_IMAGE="+standinDistroless,
		"--build-arg", "VERSION="+version, "--build-arg", "COMMIT="+commit,
		"-t", testImage, "-f", filepath.Join(repo, "Dockerfile"), repo)
	if dir := os.Getenv(ImageBuildCacheEnv); dir != "" {
		// buildah keeps RUN --mount=type=cache directories under $TMPDIR.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		build.Env = append(build.Env, "TMPDIR="+dir)
	}
	start = time.Now()
	pm.output(t, build)
	t.Logf("the Dockerfile built in %s", time.Since(start).Round(100*time.Millisecond))
}

// podman is a podman with a configuration and storage of its own under a
// temporary directory: runc (crun cannot set its rlimits here), cgroupfs,
// explicit ulimits, a private CNI config dir, file events.
type podman struct {
	bin, dir string
	env      []string
}

func newPodman(t *testing.T, bin string) *podman {
	t.Helper()
	dir, err := os.MkdirTemp("", "usersvc-podman-")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tmp", "cni", "graph", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "@DIR@", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("containers.conf", `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "@DIR@/events.log"
tmp_dir = "@DIR@/tmp"
volume_path = "@DIR@/graph/volumes"
[network]
network_config_dir = "@DIR@/cni"
`)
	storage := write("storage.conf", `[storage]
driver = "overlay"
graphroot = "@DIR@/graph"
runroot = "@DIR@/run"
`)
	pm := &podman{bin: bin, dir: dir, env: append(os.Environ(),
		"CONTAINERS_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage, "TMPDIR="+filepath.Join(dir, "tmp"))}
	// Two things rootful podman makes outside its configured directories:
	// /run/netns (a shared bind mount of itself, for the containers'
	// network namespaces) and /var/lib/containers/cache (its blob-info
	// cache). What was not there before goes at the end.
	hadNetns, hadVarLib := exists("/run/netns"), exists("/var/lib/containers")
	t.Cleanup(func() {
		// Containers first, then the store (reset unmounts its layers),
		// then the directory.
		for _, args := range [][]string{{"rm", "-a", "-f", "-t", "0"}, {"system", "reset", "-f"}} {
			if out, err := pm.try(args...); err != nil {
				t.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove podman's directory: %v", err)
		}
		if !hadNetns {
			if ents, err := os.ReadDir("/run/netns"); err == nil && len(ents) == 0 {
				_ = syscall.Unmount("/run/netns", 0)
				if err := os.Remove("/run/netns"); err != nil {
					t.Errorf("/run/netns, made by podman: %v", err)
				}
			} else if err == nil {
				t.Errorf("network namespaces left in /run/netns: %v", ents)
			}
		}
		if !hadVarLib {
			_ = os.Remove("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
			_ = os.Remove("/var/lib/containers/cache")
			if err := os.Remove("/var/lib/containers"); err != nil && !os.IsNotExist(err) {
				t.Errorf("/var/lib/containers, made by podman: %v", err)
			}
		}
	})
	return pm
}

// command is a podman command with the test's configuration.
func (p *podman) command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	return cmd
}

// run runs podman, failing the test on error; it returns standard output.
func (p *podman) run(t *testing.T, args ...string) string {
	t.Helper()
	return p.output(t, p.command(t, args...))
}

// output runs cmd, failing the test on error with what it printed.
func (p *podman) output(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	stop := time.AfterFunc(15*time.Minute, func() { _ = cmd.Process.Kill() })
	defer stop.Stop()
	err := cmd.Wait()
	out := stdout.String()
	if err != nil {
		t.Fatalf("%s: %v\n%s\n%s", strings.Join(cmd.Args, " "), err, out, tail(stderr.String(), 4000))
	}
	return out
}

// try runs podman and returns its combined output and error.
func (p *podman) try(args ...string) (string, error) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dockerfileArg is the default of a global ARG of the Dockerfile.
func dockerfileArg(t *testing.T, name string) string {
	t.Helper()
	dt, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARG ` + name + `=(\S+)$`).FindSubmatch(dt)
	if m == nil {
		t.Fatalf("the Dockerfile has no ARG %s=…", name)
	}
	return string(m[1])
}

// copyTree copies a file or directory (cp -a: modes and links kept).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v\n%s", from, err, out)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func mb(n int64) float64 { return float64(n) / 1e6 }
