// Package nginxtest runs the project's real edge configuration,
// deploy/nginx/templates/usersvc.conf.template, in Debian's nginx on
// loopback ports, in front of gateways a test started. The file is the one
// the compose stack and the Kubernetes manifests ship; only its ${NGINX_*}
// names are filled in here (ports, a temporary certificate, the access log),
// exactly as the nginx image's envsubst step fills them in a container.
package nginxtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// BinaryEnv names the nginx binary; scripts/test.sh sets it (installing
// Debian's nginx when missing). Without it the tests skip, or fail under
// USERSVC_TEST_REQUIRE_ALL=1.
const BinaryEnv = "USERSVC_TEST_NGINX"

// Edge is a running nginx.
type Edge struct {
	// HTTPSURL is the TLS (HTTP/2) entry point, e.g. https://127.0.0.1:40123;
	// HTTPURL the plain one, which only redirects and answers health.
	HTTPSURL, HTTPURL string
	// Roots trusts the edge's certificate (issued for 127.0.0.1).
	Roots *x509.CertPool
	// AccessLog is the path of the access log (ECS JSON lines).
	AccessLog string

	bin, dir, errorLog  string
	httpAddr, httpsAddr string
}

// Template is the path of the shipped edge configuration.
func Template(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("nginxtest: cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "nginx", "templates", "usersvc.conf.template")
}

// New prepares an edge without starting it: its addresses (so a cluster
// can be told its public URL first), a temporary certificate and a
// directory.
func New(t testing.TB) *Edge {
	t.Helper()
	e := &Edge{bin: testenv.Need(t, BinaryEnv), dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(e.dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.Roots = writeCert(t, e.dir)
	e.httpAddr, e.httpsAddr = testenv.FreeAddr(t), testenv.FreeAddr(t)
	e.HTTPSURL, e.HTTPURL = "https://"+e.httpsAddr, "http://"+e.httpAddr
	e.AccessLog, e.errorLog = filepath.Join(e.dir, "access.log"), filepath.Join(e.dir, "error.log")
	return e
}

// Start renders the shipped configuration with gateways as the upstream
// servers (host:port each) and runs nginx with it until the test ends.
func (e *Edge) Start(t testing.TB, gateways ...string) {
	t.Helper()
	dir := e.dir
	var upstream strings.Builder
	for _, g := range gateways {
		fmt.Fprintf(&upstream, "server %s max_fails=0;\n  ", g)
	}
	vars := map[string]string{
		"NGINX_TLS_CERTIFICATE":     filepath.Join(dir, "cert.pem"),
		"NGINX_TLS_CERTIFICATE_KEY": filepath.Join(dir, "key.pem"),
		"NGINX_GATEWAYS":            upstream.String(),
		"NGINX_HTTP_LISTEN":         e.httpAddr,
		"NGINX_HTTPS_LISTEN":        e.httpsAddr,
		"NGINX_ACCESS_LOG":          e.AccessLog,
	}
	conf, err := Render(Template(t), vars)
	if err != nil {
		t.Fatalf("nginxtest: %v", err)
	}
	write(t, filepath.Join(dir, "usersvc.conf"), conf)
	write(t, filepath.Join(dir, "nginx.conf"), []byte(mainConf(dir)))

	args := []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf")}
	if out, err := exec.Command(e.bin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginxtest: nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(e.bin, append(args, "-g", "daemon off;")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so the cleanup reaches the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nginxtest: start nginx: %v", err)
	}
	// done is closed when nginx has exited, with waitErr set: closed
	// rather than sent on, so the start-up check and the cleanup can both
	// learn it (a send was taken by the check when nginx failed to start,
	// and the cleanup then waited for ever).
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGQUIT is nginx's graceful stop.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("nginxtest: nginx did not stop on SIGQUIT within 10s")
		}
		if t.Failed() {
			b, _ := os.ReadFile(e.errorLog)
			t.Logf("nginxtest: nginx output:\n%s\nerror log:\n%s", out.String(), b)
		}
	})
	e.waitHealthy(t, done, &waitErr)
}

// waitHealthy polls the HTTPS health location until nginx answers.
func (e *Edge) waitHealthy(t testing.TB, done <-chan struct{}, waitErr *error) {
	t.Helper()
	hc := e.Client(nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := hc.Get(e.HTTPSURL + "/nginx/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(e.errorLog)
			t.Fatalf("nginxtest: nginx exited at start: %v\nerror log:\n%s", *waitErr, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginxtest: %s/nginx/healthz not 200 within 15s (last error %v)", e.HTTPSURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns an HTTP/2 client that trusts the edge's certificate and,
// when local is set, connects from that address (any of 127.0.0.0/8 works
// on Linux), so a test can be several distinct clients.
func (e *Edge) Client(local net.IP) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: e.Roots},
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		// The plain port's redirect is checked, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Entries returns the access log's lines, each decoded: every one must be
// a JSON object.
func (e *Edge) Entries(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(e.AccessLog)
	if err != nil {
		t.Fatalf("nginxtest: %v", err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("nginxtest: access log line is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("nginxtest: read access log: %v", err)
	}
	return out
}

// Entry waits for the access log line of the request with X-Request-ID id
// (nginx writes it when the response is done) and returns it.
func (e *Edge) Entry(t testing.TB, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, m := range e.Entries(t) {
			if m["http.request.id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginxtest: no access log line for request %s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var placeholder = regexp.MustCompile(`\$\{(NGINX_[A-Z0-9_]+)\}`)

// Render fills ${NGINX_*} names in the template as envsubst does with a
// list of names; a name the template uses but vars lacks is an error, so a
// new placeholder cannot slip past the tests unrendered.
func Render(path string, vars map[string]string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var missing []string
	out := placeholder.ReplaceAllFunc(b, func(m []byte) []byte {
		name := string(placeholder.FindSubmatch(m)[1])
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s uses %v, which the test does not set", path, missing)
	}
	return out, nil
}

// mainConf is what the nginx image's own nginx.conf provides around the
// include: a pid file, logs and temp paths inside dir (Debian's compiled-in
// ones are under /var), one worker.
func mainConf(dir string) string {
	tmp := filepath.Join(dir, "tmp")
	// As root, nginx's workers would switch to nobody, who cannot write
	// the test's private temp dir; they stay root here.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;\n"
	}
	return user + fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
worker_processes 1;
events { worker_connections 512; }
http {
  default_type application/octet-stream;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  include %[1]s/usersvc.conf;
}
`, dir, tmp)
}

// writeCert writes a fresh self-signed P-256 certificate for 127.0.0.1 and
// its key into dir, and returns a pool that trusts it.
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "usersvc edge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
