package deploytest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
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

// KubeAPIServerEnv names the kube-apiserver binary; scripts/test.sh builds
// it once (scripts/opstools.sh kube-apiserver) and sets this.
const KubeAPIServerEnv = "USERSVC_TEST_KUBE_APISERVER"

// TestKubernetesServerDryRun applies each overlay to a real kube-apiserver
// (with Debian's etcd behind it) with `kubectl apply --dry-run=server`:
// the API server's own validation, defaulting and admission — Pod Security
// "restricted" on the namespaces included — judge every object, and any
// warning fails the test.
func TestKubernetesServerDryRun(t *testing.T) {
	apiserver := testenv.Need(t, KubeAPIServerEnv)
	kube := startAPIServer(t, apiserver)
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			r := render(t, o)
			// A dry run creates nothing, so the namespace the objects go
			// into is created for real first.
			var ns []byte
			for _, doc := range bytes.Split(r.raw, []byte("\n---\n")) {
				if bytes.Contains(doc, []byte("kind: Namespace\n")) {
					ns = doc
				}
			}
			if ns == nil {
				t.Fatalf("%s renders no Namespace", o)
			}
			kube.kubectl(t, ns, "apply", "-f", "-")
			out := kube.kubectl(t, r.raw, "apply", "--dry-run=server", "-f", "-")
			if n := strings.Count(out, "(server dry run)"); n != len(r.objects) {
				t.Errorf("%d of %d objects accepted:\n%s", n, len(r.objects), out)
			}
			t.Logf("%s: %d objects accepted by kube-apiserver (server dry run)", o, len(r.objects))
		})
	}
	// The server does reject what is wrong: a Deployment whose selector
	// does not match its template.
	bad := []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: usersvc}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
`)
	if out, err := kube.try(bad, "apply", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "selector") {
		t.Errorf("a Deployment with a mismatched selector was not refused: %v\n%s", err, out)
	}
	// And Pod Security admission does judge the pod templates: one that
	// runs as root with its privileges draws the warning the overlays
	// must not.
	rootPod := []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: as-root, namespace: usersvc}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
`)
	if out, err := kube.try(rootPod, "apply", "--dry-run=server", "-f", "-"); err != nil || !strings.Contains(out, `would violate PodSecurity "restricted`) {
		t.Errorf("no Pod Security warning for a pod running as root: %v\n%s", err, out)
	}
}

// apiServer is a running kube-apiserver and how to reach it; dir holds its
// state, its service-account key (sa.key) and serving certificate
// (certs/apiserver.crt).
type apiServer struct {
	url, token, kubeconfig string
	kubectlBin, dir        string
}

// startAPIServer starts etcd and kube-apiserver on free loopback ports,
// their state in the test's temporary directory, and stops both when the
// test ends. Flags in extra come last, so they override the defaults.
func startAPIServer(t *testing.T, bin string, extra ...string) *apiServer {
	t.Helper()
	dir := t.TempDir()
	etcdClient, etcdPeer, securePort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	etcdURL := "http://127.0.0.1:" + etcdClient
	start(t, "etcd", exec.Command(tool(t, "etcd"), "--name=kube", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+etcdPeer, "--initial-advertise-peer-urls=http://127.0.0.1:"+etcdPeer,
		"--initial-cluster=kube=http://127.0.0.1:"+etcdPeer, "--log-level=error"))
	waitHTTP(t, &http.Client{Timeout: time.Second}, etcdURL+"/health", 30*time.Second)

	token := randomHex(t, 16)
	writeFile(t, filepath.Join(dir, "tokens.csv"), token+",admin,admin,system:masters\n")
	writeServiceAccountKey(t, filepath.Join(dir, "sa.key"))
	a := &apiServer{url: "https://127.0.0.1:" + securePort, token: token, kubeconfig: filepath.Join(dir, "kubeconfig"),
		kubectlBin: kubectl(t), dir: dir}
	writeFile(t, a.kubeconfig, "") // kubectl must not read the user's
	start(t, "kube-apiserver", exec.Command(bin, append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + securePort,
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--authorization-mode=RBAC",
		"--v=0"}, extra...)...))
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // its serving cert is self-signed in cert-dir
	waitHTTP(t, hc, a.url+"/readyz", 120*time.Second)
	return a
}

func (a *apiServer) try(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(a.kubectlBin, append([]string{"--server=" + a.url, "--token=" + a.token,
		"--insecure-skip-tls-verify=true"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+a.kubeconfig)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl against the server and fails on an error or on
// any warning (Pod Security violations, deprecated APIs).
func (a *apiServer) kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := a.try(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if strings.Contains(out, "Warning:") {
		t.Errorf("kubectl %s warned:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// start runs a server process in its own process group until the test
// ends, and shows its output when the test failed.
func start(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			s := out.String()
			if len(s) > 8000 {
				s = "…" + s[len(s)-8000:]
			}
			t.Logf("%s output:\n%s", name, s)
		}
	})
}

func waitHTTP(t *testing.T, hc *http.Client, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		res, err := hc.Get(url)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Logf("%s ready after %s", url, time.Since(start).Round(time.Millisecond))
				return
			}
			err = fmt.Errorf("status %s", res.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeServiceAccountKey(t *testing.T, path string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
