package deploytest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var overlays = []string{"dev", "prod"}

// rendered is one overlay's `kubectl kustomize` output, raw and decoded.
type rendered struct {
	name    string
	raw     []byte
	objects []runtime.Object
}

// render runs kustomize (kubectl's) on an overlay and strictly decodes
// every object into its k8s.io/api type: an unknown or misspelt field, or
// a value of the wrong type, fails here.
func render(t *testing.T, overlay string) rendered {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "k8s", "overlays", overlay)
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	codec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	r := rendered{name: overlay, raw: out}
	reader := utilyaml.NewYAMLReader(bufioReader(out))
	for {
		doc, err := reader.Read()
		if err != nil {
			break // io.EOF: every document read
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := codec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s: strict decode: %v\n%s", overlay, err, firstLines(doc, 6))
			continue
		}
		if gvk.Kind == "" {
			t.Errorf("%s: object without kind", overlay)
		}
		r.objects = append(r.objects, obj)
	}
	if len(r.objects) < 20 {
		t.Fatalf("%s: only %d objects rendered", overlay, len(r.objects))
	}
	return r
}

// TestKubernetesOverlays renders each overlay and checks, in Go, the
// policies the manifests promise.
func TestKubernetesOverlays(t *testing.T) {
	known := knownSettings(t)
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			r := render(t, o)
			checkWorkloads(t, r, known)
			checkDisruptionBudgets(t, r)
			checkNetworkPolicies(t, r)
			checkAutoscalers(t, r)
			checkSecrets(t, r, known)
		})
	}
}

// podSpecs are the pod templates of every workload, by kind/name.
func podSpecs(r rendered) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, obj := range r.objects {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+o.Name] = &o.Spec.Template
		case *appsv1.StatefulSet:
			out["StatefulSet/"+o.Name] = &o.Spec.Template
		case *batchv1.Job:
			out["Job/"+o.Name] = &o.Spec.Template
		}
	}
	return out
}

func objectsOf[T runtime.Object](r rendered) []T {
	var out []T
	for _, obj := range r.objects {
		if o, ok := obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// checkWorkloads: every container has limits, runs as non-root on a
// read-only root filesystem without privilege escalation or capabilities,
// and (Jobs aside) has startup, liveness and readiness probes; the roles
// have the drain time, preStop and spread the issue asks for, and set only
// settings the binary knows.
func checkWorkloads(t *testing.T, r rendered, known map[string]bool) {
	roles := map[string]bool{}
	for name, tmpl := range podSpecs(r) {
		spec := &tmpl.Spec
		isJob := strings.HasPrefix(name, "Job/")
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
			psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext must set runAsNonRoot and RuntimeDefault seccomp", name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token it has no use for", name)
		}
		for _, c := range spec.Containers {
			where := name + " container " + c.Name
			checkContainerSecurity(t, where, c.SecurityContext)
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Limits[res]; !ok {
					t.Errorf("%s: no %s limit", where, res)
				}
				if _, ok := c.Resources.Requests[res]; !ok {
					t.Errorf("%s: no %s request", where, res)
				}
			}
			if !isJob && (c.StartupProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe == nil) {
				t.Errorf("%s: needs startup, liveness and readiness probes", where)
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "USERSVC_") && !known[e.Name] {
					t.Errorf("%s: sets %s, which is not in the configuration table", where, e.Name)
				}
			}
			if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s: image %q is not pinned to a version", where, c.Image)
			}
		}
		if tmpl.Labels["app.kubernetes.io/name"] == "usersvc" && !isJob {
			role := tmpl.Labels["app.kubernetes.io/component"]
			roles[role] = true
			checkRole(t, name, spec)
		}
	}
	for _, role := range []string{"gateway", "api", "service", "worker"} {
		if !roles[role] {
			t.Errorf("no Deployment for the %s role", role)
		}
	}
	jobs := objectsOf[*batchv1.Job](r)
	if len(jobs) != 1 || !slices.Equal(jobs[0].Spec.Template.Spec.Containers[0].Args, []string{"migrate"}) {
		t.Errorf("want exactly one Job, running `usersvc migrate`; have %d", len(jobs))
	}
}

func checkContainerSecurity(t *testing.T, where string, sc *corev1.SecurityContext) {
	t.Helper()
	switch {
	case sc == nil:
		t.Errorf("%s: no securityContext", where)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: root filesystem not read-only", where)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation not disabled", where)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities not all dropped", where)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", where)
	}
}

// checkRole: the usersvc roles' drain — grace period above preStop plus
// USERSVC_DRAIN_DELAY and USERSVC_SHUTDOWN_TIMEOUT — their spread across nodes, and probes on the
// health endpoints.
func checkRole(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	c := spec.Containers[0]
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Errorf("%s: no preStop sleep (the image has no shell)", name)
		return
	}
	// USERSVC_DRAIN_DELAY (the default, 1s) + USERSVC_SHUTDOWN_TIMEOUT in
	// base/config.yaml.
	drain := time.Second + 15*time.Second
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + drain
	if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= need {
		t.Errorf("%s: terminationGracePeriodSeconds must exceed preStop + drain (%s)", name, need)
	}
	if len(spec.TopologySpreadConstraints) == 0 || spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("%s: no topology spread across nodes", name)
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz", c.StartupProbe: "/healthz"} {
		if probe.HTTPGet == nil || probe.HTTPGet.Path != path {
			t.Errorf("%s: a probe is not GET %s", name, path)
		}
	}
}

// checkDisruptionBudgets: every Deployment (and the etcd quorum) is
// covered by exactly one PodDisruptionBudget.
func checkDisruptionBudgets(t *testing.T, r rendered) {
	pdbs := objectsOf[*policyv1.PodDisruptionBudget](r)
	for _, d := range objectsOf[*appsv1.Deployment](r) {
		n := 0
		for _, p := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil {
				t.Fatalf("PDB %s: %v", p.Name, err)
			}
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Deployment %s is covered by %d PodDisruptionBudgets, want 1", d.Name, n)
		}
	}
}

// checkAutoscalers: api and service scale on CPU, and each HPA points at
// a Deployment of this overlay.
func checkAutoscalers(t *testing.T, r rendered) {
	deps := map[string]bool{}
	for _, d := range objectsOf[*appsv1.Deployment](r) {
		deps[d.Name] = true
	}
	var targets []string
	for _, h := range objectsOf[*autoscalingv2.HorizontalPodAutoscaler](r) {
		if !deps[h.Spec.ScaleTargetRef.Name] {
			t.Errorf("HPA %s scales %s, which does not exist", h.Name, h.Spec.ScaleTargetRef.Name)
		}
		targets = append(targets, h.Spec.ScaleTargetRef.Name)
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"usersvc-api", "usersvc-service"}) {
		t.Errorf("HPAs for %v, want the api and the service", targets)
	}
}

// checkSecrets: generated Secrets and the ConfigMap set only settings the
// binary knows.
func checkSecrets(t *testing.T, r rendered, known map[string]bool) {
	check := func(kind, name string, keys []string) {
		for _, k := range keys {
			if strings.HasPrefix(k, "USERSVC_") && !known[k] {
				t.Errorf("%s %s: %s is not in the configuration table", kind, name, k)
			}
		}
	}
	for _, cm := range objectsOf[*corev1.ConfigMap](r) {
		check("ConfigMap", cm.Name, mapKeys(cm.Data))
	}
	for _, s := range objectsOf[*corev1.Secret](r) {
		keys := mapKeys(s.StringData)
		for k := range s.Data {
			keys = append(keys, k)
		}
		check("Secret", s.Name, keys)
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkNetworkPolicies: a default deny of both directions over the whole
// namespace; every pod selected by a policy of its own that allows it
// something; only the API reaches the service's gRPC port; only the
// service, the worker and the migration reach MySQL's port.
func checkNetworkPolicies(t *testing.T, r rendered) {
	pols := objectsOf[*networkingv1.NetworkPolicy](r)
	hasDefaultDeny := false
	for _, p := range pols {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 && len(p.Spec.PolicyTypes) == 2 {
			hasDefaultDeny = true
		}
	}
	if !hasDefaultDeny {
		t.Errorf("no default-deny NetworkPolicy (empty selector, Ingress and Egress, no rules)")
	}
	for name, tmpl := range podSpecs(r) {
		own := 0
		for _, p := range pols {
			if len(p.Spec.PodSelector.MatchLabels) > 0 && selects(t, &p.Spec.PodSelector, tmpl.Labels) {
				own++
			}
		}
		if own == 0 {
			t.Errorf("%s: no NetworkPolicy of its own selects its pods", name)
		}
	}
	pods := podSpecs(r)
	for _, p := range pols {
		for target, tmpl := range pods {
			if !selects(t, &p.Spec.PodSelector, tmpl.Labels) {
				continue
			}
			role := tmpl.Labels["app.kubernetes.io/component"]
			for _, rule := range p.Spec.Ingress {
				if role == "service" && opensPort(rule.Ports, 9090) {
					for _, peer := range rule.From {
						if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil ||
							peer.PodSelector.MatchLabels["app.kubernetes.io/component"] != "api" {
							t.Errorf("%s lets %s reach %s's gRPC port; only the API may", p.Name, describePeer(peer), target)
						}
					}
				}
			}
		}
		// Egress to MySQL's port: only from the service, worker and migration.
		for _, rule := range p.Spec.Egress {
			if !opensPort(rule.Ports, 3306) {
				continue
			}
			for source, tmpl := range pods {
				if selects(t, &p.Spec.PodSelector, tmpl.Labels) {
					if role := tmpl.Labels["app.kubernetes.io/component"]; role != "service" && role != "worker" && role != "migrate" {
						t.Errorf("%s lets %s reach MySQL", p.Name, source)
					}
				}
			}
		}
	}
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(podLabels))
}

// opensPort: a rule without ports opens every port.
func opensPort(ports []networkingv1.NetworkPolicyPort, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || (p.Port.Type == intstr.Int && int(p.Port.IntVal) == port) || p.Port.String() == strconv.Itoa(port) {
			return true
		}
	}
	return false
}

func describePeer(p networkingv1.NetworkPolicyPeer) string {
	return fmt.Sprintf("%+v", p)
}

// TestKubernetesStatefulSetServices: the headless Service a StatefulSet's
// pods resolve each other through (spec.serviceName) carries the
// StatefulSet's labels, so the `kubectl apply -l …` of docs/deploy.md that
// selects the StatefulSet takes its Service along (the etcd Service had no
// labels: its peers could not resolve).
func TestKubernetesStatefulSetServices(t *testing.T) {
	for _, o := range overlays {
		r := render(t, o)
		services := map[string]*corev1.Service{}
		for _, obj := range r.objects {
			if s, ok := obj.(*corev1.Service); ok {
				services[s.Name] = s
			}
		}
		for _, obj := range r.objects {
			ss, ok := obj.(*appsv1.StatefulSet)
			if !ok {
				continue
			}
			svc := services[ss.Spec.ServiceName]
			if svc == nil {
				t.Errorf("%s: StatefulSet %s names Service %q, which the overlay does not have", o, ss.Name, ss.Spec.ServiceName)
				continue
			}
			for k, v := range ss.Labels {
				if svc.Labels[k] != v {
					t.Errorf("%s: Service %s lacks the label %s=%s of its StatefulSet %s: `kubectl apply -l %s=%s` would leave it out",
						o, svc.Name, k, v, ss.Name, k, v)
				}
			}
		}
	}
}
