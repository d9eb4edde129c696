package deploytest

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

// The official base images, the defaults of the Dockerfile's GO_IMAGE and
// BASE_IMAGE arguments.
const (
	buildImage = "golang:1.26.8-bookworm"
	finalImage = "gcr.io/distroless/static-debian12:nonroot"
)

// dockerfile parses the Dockerfile with buildkit's own frontend parser,
// failing on any parser warning. Each stage's BaseName is expanded with the
// defaults of the global ARGs (GO_IMAGE, BASE_IMAGE), as a build without
// --build-arg sees it.
func dockerfile(t *testing.T) ([]byte, []instructions.Stage) {
	t.Helper()
	dt, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile parser warning: %s", w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	defaults := map[string]string{}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return defaults[k] }) }
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				defaults[kv.Key] = expand(*kv.Value)
			}
		}
	}
	for i := range stages {
		stages[i].BaseName = expand(stages[i].BaseName)
	}
	return dt, stages
}

// TestDockerfileLint runs the checks of `docker build --check` (buildkit's
// dockerfile2llb.DockerfileLint) and the image's own promises: two stages,
// a static build, a distroless non-root final stage whose health check and
// entrypoint are the binary.
func TestDockerfileLint(t *testing.T) {
	dt, stages := dockerfile(t)
	sm := llb.NewSourceMap(nil, "Dockerfile", "", dt)
	sm.Definition = &llb.Definition{} // DockerfileLint dereferences it
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{
		SourceMap: sm, MetaResolver: offlineResolver{},
		Config: dockerui.Config{BuildArgs: map[string]string{"VERSION": "1.0.0", "COMMIT": "0123abc"}}})
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	if res.Error != nil {
		t.Errorf("lint: build error %s", res.Error.Message)
	}
	for _, w := range res.Warnings {
		t.Errorf("lint %s: %s (%s)", w.RuleName, w.Detail, w.URL)
	}

	if len(stages) != 2 {
		t.Fatalf("%d stages, want build + final", len(stages))
	}
	if stages[0].BaseName != buildImage {
		t.Errorf("build stage FROM %s by default, want %s", stages[0].BaseName, buildImage)
	}
	final := stages[1]
	if final.BaseName != finalImage {
		t.Errorf("final stage FROM %s by default, want %s", final.BaseName, finalImage)
	}
	var user string
	var health *instructions.HealthCheckCommand
	var entry []string
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		case *instructions.RunCommand:
			t.Errorf("the final stage runs %q: it has no shell", c.CmdLine)
		}
	}
	if user != "65532:65532" {
		t.Errorf("final USER %q, want the numeric nonroot 65532:65532", user)
	}
	if health == nil || !slices.Equal(health.Health.Test, []string{"CMD", "/usersvc", "healthcheck"}) {
		t.Errorf("HEALTHCHECK %+v, want CMD /usersvc healthcheck (exec form: no shell)", health)
	}
	if !slices.Equal(entry, []string{"/usersvc"}) {
		t.Errorf("ENTRYPOINT %v, want [/usersvc]", entry)
	}
}

// TestDockerfileBuild runs the build stage's own `go build` command — read
// from the Dockerfile, with its ENV and the VERSION/COMMIT build args — on
// this machine, and checks the binary: static, stripped of paths, and
// `usersvc version` reporting what was passed in.
func TestDockerfileBuild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; the build check reads ELF")
	}
	_, stages := dockerfile(t)
	env := []string{"VERSION=9.9.9-test", "COMMIT=0123456789abcdef"}
	var build string
	for _, cmd := range stages[0].Commands {
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		case *instructions.RunCommand:
			if line := strings.Join(c.CmdLine, " "); strings.Contains(line, "go build") {
				build = line
			}
		}
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the build stage does not set CGO_ENABLED=0: %v", env)
	}
	if strings.Count(build, "-o /out/usersvc ") != 1 || !strings.Contains(build, "-trimpath") {
		t.Fatalf("build command %q: want -trimpath and -o /out/usersvc", build)
	}
	out := filepath.Join(t.TempDir(), "usersvc")
	build = strings.Replace(build, "-o /out/usersvc ", "-o "+out+" ", 1)
	cmd := exec.Command("sh", "-c", build)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	t.Logf("built with the Dockerfile's command in %s", time.Since(start).Round(time.Second))

	version, err := exec.Command(out, "version").Output()
	if err != nil {
		t.Fatalf("usersvc version: %v", err)
	}
	if want := "usersvc 9.9.9-test (commit 0123456789abcdef, " + runtime.Version(); !strings.HasPrefix(string(version), want) {
		t.Errorf("usersvc version printed %q, want it to begin %q", version, want)
	}
	info, err := buildinfo.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["-tags"] != "nomsgpack" {
		t.Errorf("build settings %v: want CGO_ENABLED=0, -trimpath and -tags nomsgpack", settings)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
}

// TestDockerignore: the build context holds what the Dockerfile copies and
// nothing of the rest (VCS data, local data dirs, binaries, deploy files).
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(root(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(p string) bool {
		m, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// third_party/zxcvbn-go is the target of a replace in go.mod: without
	// it `go mod download` fails in the build stage.
	for _, p := range []string{"go.mod", "go.sum", "api/openapi.yaml", "cmd/usersvc/main.go", "internal/cli/cli.go",
		"third_party/zxcvbn-go/go.mod", "third_party/zxcvbn-go/zxcvbn.go"} {
		if excluded(p) {
			t.Errorf("%s is excluded from the build context but the build needs it", p)
		}
	}
	for _, p := range []string{".git/config", "data/usersvc.db", "bin/staticcheck", "deploy/compose/.env",
		"internal/cli/cli_test.go", "README.md"} {
		if !excluded(p) {
			t.Errorf("%s would be sent to the builder", p)
		}
	}
}

// offlineResolver answers buildkit's base-image lookups without a registry
// (none is reachable here) with a bare linux config of this machine's
// architecture: the lint checks need an answer to proceed, and the base
// images' real configs only add inherited ENV and USER, which the final
// stage sets itself.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg := fmt.Sprintf(`{"architecture":%q,"os":"linux","config":{}}`, runtime.GOARCH)
	return ref, "", []byte(cfg), nil
}
