package deploytest

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// docsCommands are the kubectl commands of docs/deploy.md's shell blocks
// in one section, in order, with $NS expanded.
func docsCommands(t *testing.T, section string) []string {
	t.Helper()
	var cmds []string
	for _, c := range docsShell(t, section) {
		if strings.HasPrefix(c, "kubectl ") {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("docs/deploy.md %q has no kubectl commands", section)
	}
	return cmds
}

// docsShell is every command of docs/deploy.md's shell blocks in one
// section, in order: comments left out, lines continued with a backslash
// joined, and the NS= assignment taken in and $NS expanded. It is what
// TestDeployDocsOrder checks against the rendered objects and what
// TestKubelet runs against a live cluster, so both follow the same text.
func docsShell(t *testing.T, section string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+section+"\n")
	if i < 0 {
		t.Fatalf("docs/deploy.md has no section %q", section)
	}
	doc = doc[i+len(section)+2:]
	var cmds []string
	ns, cont := "", ""
	inBlock := false
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "```") {
			inBlock = line == "```sh" && !inBlock
			continue
		}
		if !inBlock && strings.HasPrefix(line, "#") {
			break // the next heading, of any level, ends the section
		}
		if !inBlock || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if v, ok := strings.CutSuffix(line, "\\"); ok {
			cont += strings.TrimSpace(v) + " "
			continue
		}
		line, cont = cont+line, ""
		if v, ok := strings.CutPrefix(line, "NS="); ok {
			ns = v
			continue
		}
		cmds = append(cmds, strings.ReplaceAll(line, "$NS", ns))
	}
	return cmds
}

var (
	applyCmd  = regexp.MustCompile(`^kubectl apply -k deploy/k8s/overlays/(\w+)(?: -l (?:'([^']+)'|(\S+)))?$`)
	createNS  = regexp.MustCompile(`^kubectl create namespace (\S+)$`)
	createSec = regexp.MustCompile(`^kubectl -n (\S+) create secret (?:generic|tls) (\S+) `)
	waitFor   = regexp.MustCompile(`^kubectl -n (\S+) (?:rollout status|wait .*) ((?:\w+/[\w-]+ ?)+)$`)
)

// TestDeployDocsOrder follows docs/deploy.md's order of operations for each
// overlay — the Secrets it creates, then each `kubectl apply -k … -l …` on
// the rendered overlay's objects that the selector takes — and checks after
// every step that what was applied can run: each workload's ServiceAccount,
// ConfigMaps and Secrets, each StatefulSet's Service, each Ingress's TLS
// Secret and the namespace exist by then, and what a step waits for was
// applied. A selector that misses what a step needs fails here, so the
// docs cannot drift from the manifests. TestKubelet runs the dev flow's
// commands for real on a single-node cluster; the production flow is only
// followed here (its Secrets name servers this machine has not).
func TestDeployDocsOrder(t *testing.T) {
	flows := map[string][]string{
		"prod": {"## Secrets to create (prod)", "## Order of operations"},
		"dev":  {"### The dev overlay"},
	}
	for overlay, sections := range flows {
		t.Run(overlay, func(t *testing.T) {
			var cmds []string
			for _, s := range sections {
				cmds = append(cmds, docsCommands(t, s)...)
			}
			r := render(t, overlay)
			have := map[string]bool{} // Kind/namespace/name
			applies := 0
			for _, c := range cmds {
				switch {
				case createNS.MatchString(c):
					have["Namespace//"+createNS.FindStringSubmatch(c)[1]] = true
				case createSec.MatchString(c):
					m := createSec.FindStringSubmatch(c)
					have["Secret/"+m[1]+"/"+m[2]] = true
				case applyCmd.MatchString(c):
					m := applyCmd.FindStringSubmatch(c)
					if m[1] != overlay {
						continue // the other overlay's flow
					}
					applies++
					sel := labels.Everything()
					if s := m[2] + m[3]; s != "" {
						var err error
						if sel, err = labels.Parse(s); err != nil {
							t.Fatalf("%s: selector: %v", c, err)
						}
					}
					n := 0
					for _, obj := range r.objects {
						a, _ := meta.Accessor(obj)
						if sel.Matches(labels.Set(a.GetLabels())) {
							have[key(obj)] = true
							n++
						}
					}
					if n == 0 {
						t.Errorf("%s applies nothing", c)
					}
					checkApplied(t, c, r.objects, have)
				case waitFor.MatchString(c):
					m := waitFor.FindStringSubmatch(c)
					for _, ref := range strings.Fields(m[2]) {
						kind, name, _ := strings.Cut(ref, "/")
						kind = map[string]string{"statefulset": "StatefulSet", "deploy": "Deployment", "deployment": "Deployment", "job": "Job"}[kind]
						if !have[kind+"/"+m[1]+"/"+name] {
							t.Errorf("%s: %s/%s in %s is not applied by then", c, kind, name, m[1])
						}
					}
				}
			}
			if applies < 2 {
				t.Fatalf("the %s flow has %d kubectl apply commands: %q", overlay, applies, cmds)
			}
			for _, obj := range r.objects {
				if !have[key(obj)] {
					t.Errorf("%s is never applied", key(obj))
				}
			}
		})
	}
}

func key(obj runtime.Object) string {
	a, _ := meta.Accessor(obj)
	return reflect.TypeOf(obj).Elem().Name() + "/" + a.GetNamespace() + "/" + a.GetName()
}

// checkApplied: every applied object's references are there too.
func checkApplied(t *testing.T, step string, objects []runtime.Object, have map[string]bool) {
	t.Helper()
	need := func(from, kind, ns, name string) {
		if !have[kind+"/"+ns+"/"+name] {
			t.Errorf("after %q: %s needs %s %s/%s, which is not there yet", step, from, kind, ns, name)
		}
	}
	for _, obj := range objects {
		if !have[key(obj)] {
			continue
		}
		a, _ := meta.Accessor(obj)
		ns := a.GetNamespace()
		if ns != "" {
			need(key(obj), "Namespace", "", ns)
		}
		var pod *corev1.PodSpec
		switch o := obj.(type) {
		case *appsv1.Deployment:
			pod = &o.Spec.Template.Spec
		case *appsv1.StatefulSet:
			pod = &o.Spec.Template.Spec
			if o.Spec.ServiceName != "" {
				need(key(obj), "Service", ns, o.Spec.ServiceName)
			}
		case *batchv1.Job:
			pod = &o.Spec.Template.Spec
		case *networkingv1.Ingress:
			for _, tls := range o.Spec.TLS {
				need(key(obj), "Secret", ns, tls.SecretName)
			}
		}
		if pod == nil {
			continue
		}
		if sa := pod.ServiceAccountName; sa != "" && sa != "default" {
			need(key(obj), "ServiceAccount", ns, sa)
		}
		for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
			for _, e := range c.EnvFrom {
				if r := e.ConfigMapRef; r != nil && (r.Optional == nil || !*r.Optional) {
					need(key(obj), "ConfigMap", ns, r.Name)
				}
				if r := e.SecretRef; r != nil && (r.Optional == nil || !*r.Optional) {
					need(key(obj), "Secret", ns, r.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					need(key(obj), "Secret", ns, r.Name)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					need(key(obj), "ConfigMap", ns, r.Name)
				}
			}
		}
		for _, v := range pod.Volumes {
			if s := v.Secret; s != nil && (s.Optional == nil || !*s.Optional) {
				need(key(obj), "Secret", ns, s.SecretName)
			}
			if c := v.ConfigMap; c != nil && (c.Optional == nil || !*c.Optional) {
				need(key(obj), "ConfigMap", ns, c.Name)
			}
		}
	}
}
