package deploytest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// usersvcRoles are the compose services that run the usersvc image.
var usersvcRoles = []string{"migrate", "gateway", "api", "service", "worker"}

// publishedUIs are the only ports the stack publishes: service → target
// port → host port.
var publishedUIs = map[string]map[uint32]string{
	"nginx":    {443: "8443", 80: "8080"},
	"grafana":  {3000: "3000"},
	"jaeger":   {16686: "16686"},
	"kibana":   {5601: "5601"},
	"rabbitmq": {15672: "15672"},
}

// loadCompose loads deploy/compose/compose.yaml with compose-go — schema
// validation, interpolation, anchors and merges as `docker compose` does
// them — with every profile on, and the variables of .env.example plus
// test values for the secrets it leaves empty.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "compose")
	example := readEnvFile(t, filepath.Join(dir, ".env.example"))
	var env []string
	for k, v := range example {
		if v == "" {
			v = "test-secret-" + strings.ToLower(k)
		}
		env = append(env, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

// readEnvFile reads KEY=value lines (comments and blanks skipped; a
// commented-out KEY= counts as documented).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "# ") || line == "#" {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=value", path, line)
		}
		if !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

// TestComposeStack checks the compose file's promises, as a test can
// without a Docker engine.
func TestComposeStack(t *testing.T) {
	p := loadCompose(t)
	known := knownSettings(t)

	oneShots := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				oneShots[dep] = true
			}
		}
	}
	for _, want := range []string{"init", "migrate"} {
		if !oneShots[want] {
			t.Errorf("nothing waits for %s to complete", want)
		}
	}

	for name, s := range p.Services {
		// Health: one-shots finish instead; everything else says when it is up.
		if oneShots[name] {
			if s.Restart != "no" {
				t.Errorf("%s: a one-shot must not restart (restart %q)", name, s.Restart)
			}
		} else if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy && d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on %s with condition %q: want healthy or completed", name, dep, d.Condition)
			}
		}
		checkImage(t, name, s.Image)
		for k := range s.Environment {
			if strings.HasPrefix(k, "USERSVC_") && !known[k] {
				t.Errorf("%s sets %s, which is not in the configuration table", name, k)
			}
		}
		checkPorts(t, name, s.Ports)
		checkVolumes(t, name, s.Volumes)
	}

	// The usersvc roles: one image, built from the repository's Dockerfile.
	var image string
	for _, role := range usersvcRoles {
		s, ok := p.Services[role]
		if !ok {
			t.Errorf("no %s service", role)
			continue
		}
		if s.Build == nil || filepath.Clean(s.Build.Context) != root(t) || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s is not built from the repository's Dockerfile: %+v", role, s.Build)
		}
		if image == "" {
			image = s.Image
		}
		if s.Image != image || !strings.HasPrefix(s.Image, "usersvc/usersvc:") {
			t.Errorf("%s runs %q, want the one usersvc image %q", role, s.Image, image)
		}
		if !slices.Equal([]string(s.Command), []string{role}) {
			t.Errorf("%s runs command %v, want [%s]", role, s.Command, role)
		}
	}
	for _, role := range []string{"api", "service"} {
		if s := p.Services[role]; s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas != 2 {
			t.Errorf("%s: want 2 replicas", role)
		}
	}

	// Every published service is there; every variable compose.yaml
	// interpolates is documented in .env.example.
	for name := range publishedUIs {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	raw, err := os.ReadFile(filepath.Join(root(t), "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	documented := readEnvFile(t, filepath.Join(root(t), "deploy", "compose", ".env.example"))
	for k := range readCommented(t) {
		documented[k] = ""
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := documented[m[1]]; !ok {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not document", m[1])
		}
	}
	checkNginxService(t, p.Services["nginx"])
}

// installAtRunTime matches a package manager installing something.
var installAtRunTime = regexp.MustCompile(`\b(apk add|apt-get install|apt install|pip3? install|yum install|dnf install|microdnf install)\b`)

// TestComposeOffline: once its images are built, the stack needs no
// network: no service installs packages when it starts (the init service
// used to `apk add openssl` with network_mode: none).
func TestComposeOffline(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		line := strings.Join(append(append([]string{}, s.Entrypoint...), s.Command...), " ")
		if m := installAtRunTime.FindString(line); m != "" {
			t.Errorf("%s runs %q when it starts: install it when the image is built", name, m)
		}
		if s.Build != nil && s.Build.Dockerfile != "" {
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s is built from %s: %v", name, df, err)
			}
		}
	}
}

// TestComposeVersions: compose runs the Jaeger the tests run.
// scripts/opstools.sh builds Jaeger from its Go module, tagged v1.x; the
// image of the same release is tagged 2.y (the CHANGELOG's "v1.x / v2.y").
func TestComposeVersions(t *testing.T) {
	v2For := map[string]string{"v1.76.0": "2.13.0"}
	b, err := os.ReadFile(filepath.Join(root(t), "scripts", "opstools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^JAEGER_VERSION=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("scripts/opstools.sh sets no JAEGER_VERSION")
	}
	want, ok := v2For[string(m[1])]
	if !ok {
		t.Fatalf("the tests run Jaeger %s: add its 2.y image tag (its CHANGELOG's \"%s / v2.y\" line) to this test", m[1], m[1])
	}
	if got := loadCompose(t).Services["jaeger"].Image; got != "jaegertracing/jaeger:"+want {
		t.Errorf("compose runs Jaeger %s; the tests run %s, whose image is jaegertracing/jaeger:%s", got, m[1], want)
	}
}

// TestComposeFilebeat: Filebeat waits for the server its configuration
// ships to, and for nothing that configuration does not name.
func TestComposeFilebeat(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "elk", "filebeat.yml"))
	if err != nil {
		t.Fatal(err)
	}
	outs := regexp.MustCompile(`(?m)^output\.([a-z]+):`).FindAllSubmatch(b, -1)
	if len(outs) != 1 {
		t.Fatalf("filebeat.yml has %d outputs, want one", len(outs))
	}
	out := string(outs[0][1])
	fb := loadCompose(t).Services["filebeat"]
	if _, ok := fb.DependsOn[out]; !ok {
		t.Errorf("filebeat ships to %s but does not wait for it (depends on %v)", out, keys(fb.DependsOn))
	}
	for dep := range fb.DependsOn {
		if dep != out {
			t.Errorf("filebeat waits for %s, but its output is %s", dep, out)
		}
	}
}

// TestComposeMailDir: the worker's mail volume is mounted on a directory
// the image makes and gives its user, so the empty named volume starts
// owned by 65532 and the non-root worker can write mail into it. (TestImage
// writes into such a volume for real.)
func TestComposeMailDir(t *testing.T) {
	w := loadCompose(t).Services["worker"]
	dir := w.Environment["USERSVC_MAIL_DIR"]
	if dir == nil {
		t.Fatal("the worker sets no USERSVC_MAIL_DIR")
	}
	mounted := false
	for _, v := range w.Volumes {
		mounted = mounted || (v.Type == types.VolumeTypeVolume && v.Target == *dir)
	}
	if !mounted {
		t.Errorf("the worker's mail dir %s is not a named volume", *dir)
	}
	rel, ok := strings.CutPrefix(*dir, "/var/lib/usersvc/")
	if !ok {
		t.Fatalf("the mail dir %s is not under the image's data dir /var/lib/usersvc", *dir)
	}
	df, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^RUN mkdir -p .*/out/data/`+regexp.QuoteMeta(rel)+`\b`).Match(df) ||
		!strings.Contains(string(df), "COPY --from=build --chown=65532:65532 /out/data /var/lib/usersvc") {
		t.Errorf("the Dockerfile does not make /var/lib/usersvc/%s owned by 65532", rel)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// readCommented returns the KEY= lines of .env.example that are commented
// out (documented optional variables).
func readCommented(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "compose", ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#([A-Z_][A-Z0-9_]*)=`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	return out
}

// checkImage: a version tag that is not "latest" (or a digest).
func checkImage(t *testing.T, service, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	slash := strings.LastIndex(image, "/")
	tag := ""
	if i := strings.LastIndex(image, ":"); i > slash {
		tag = image[i+1:]
	}
	if tag == "" || tag == "latest" || !regexp.MustCompile(`\d`).MatchString(tag) {
		t.Errorf("%s: image %q is not pinned to a version", service, image)
	}
}

// checkPorts: only the UIs are published, on 127.0.0.1, on their ports.
func checkPorts(t *testing.T, service string, ports []types.ServicePortConfig) {
	t.Helper()
	want := publishedUIs[service]
	got := map[uint32]string{}
	for _, pc := range ports {
		if pc.Published == "" {
			continue
		}
		if pc.HostIP != "127.0.0.1" {
			t.Errorf("%s publishes %d on %q, want 127.0.0.1 by default", service, pc.Target, pc.HostIP)
		}
		got[pc.Target] = pc.Published
	}
	if len(got) != len(want) {
		t.Errorf("%s publishes %v, want %v", service, got, want)
		return
	}
	for target, host := range want {
		if got[target] != host {
			t.Errorf("%s publishes %d on %q, want %q", service, target, got[target], host)
		}
	}
}

// checkVolumes: data lives in named volumes; bind mounts are read-only
// configuration from this repository (or the engine's log files, read by
// the log shippers).
func checkVolumes(t *testing.T, service string, vols []types.ServiceVolumeConfig) {
	t.Helper()
	repo := root(t)
	for _, v := range vols {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		switch {
		case strings.HasPrefix(v.Source, repo+string(filepath.Separator)):
			if !v.ReadOnly {
				t.Errorf("%s mounts %s writable", service, v.Source)
			}
			// Every mounted file exists: a missing one makes the engine
			// create an empty directory in its place (or refuse to start).
			if _, err := os.Stat(v.Source); err != nil {
				rel, _ := filepath.Rel(repo, v.Source)
				t.Errorf("%s mounts %s: %v", service, rel, err)
			}
		case v.Source == "/var/lib/docker/containers" || v.Source == "/var/run/docker.sock":
			if !v.ReadOnly || (service != "filebeat" && service != "promtail") {
				t.Errorf("%s mounts the engine's %s (read-only %v)", service, v.Source, v.ReadOnly)
			}
		default:
			t.Errorf("%s bind-mounts %s: data belongs in a named volume", service, v.Source)
		}
	}
}

// checkNginxService: the nginx service renders the same template the
// end-to-end tests run, and sets every ${NGINX_*} name it uses.
func checkNginxService(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(root(t), "deploy", "nginx", "templates", "usersvc.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{(NGINX_[A-Z0-9_]+)\}`).FindAllStringSubmatch(string(tmpl), -1) {
		if v := s.Environment[m[1]]; v == nil || *v == "" {
			t.Errorf("nginx: the template uses ${%s}, which the service does not set", m[1])
		}
	}
	mounted := false
	for _, v := range s.Volumes {
		mounted = mounted || (strings.HasSuffix(v.Source, filepath.Join("deploy", "nginx", "templates")) && v.Target == "/etc/nginx/templates")
	}
	if !mounted {
		t.Errorf("nginx does not mount deploy/nginx/templates at /etc/nginx/templates")
	}
}
