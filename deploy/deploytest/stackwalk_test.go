package deploytest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
)

// volumeDir is where a named volume of the stack lives in the test's store.
func (s *stack) volumeDir(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(s.pm.run(t, "volume", "inspect", "--format", "{{.Mountpoint}}", "usersvc_"+name))
}

// httpsClient trusts the certificate the init service made (in the tls
// volume), for localhost and 127.0.0.1: TLS is verified, not skipped.
func (s *stack) httpsClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(s.volumeDir(t, "tls"), "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the init service's cert.pem holds no certificate")
	}
	return &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// call sends a JSON request through api, the project's one test client
// (which checks the exchange against api/openapi.yaml), and fails the test
// unless the status is want; it returns the decoded JSON object (nil when
// the answer is none).
func call(api *apiclient.Client, method, path, bearer string, body any, want int) map[string]any {
	api.T().Helper()
	r := api.Do(method, path, bearer, body).WantStatus(want)
	var out map[string]any
	if len(bytes.TrimSpace(r.Body)) > 0 && r.Body[0] == '{' {
		r.Decode(&out)
	}
	return out
}

// walkREADME is the README's curl walk-through, through nginx over TLS:
// register, sign in, read and update, rotate the refresh token, list the
// sessions, the first admin made as the README says (compose run … admin
// create), a search, a password reset whose link comes from the mail the
// worker container wrote into the mail volume, sign-out, deletion, the
// public keys and health.
func walkREADME(t *testing.T, s *stack, hc *http.Client, base string) {
	t.Helper()
	api := apiclient.New(t, base)
	api.HTTP = hc
	const email, pass = "alice@example.com", "correct horse battery staple"
	signup := call(api, "POST", "/user", "", map[string]string{"email": email, "password": pass, "name": "Alice"}, 201)
	id, _ := signup["id"].(string)
	tokens := call(api, "POST", "/user/token", "", map[string]string{"email": email, "password": pass}, 200)
	access, _ := tokens["access_token"].(string)
	refresh, _ := tokens["refresh_token"].(string)
	if id == "" || access == "" || refresh == "" {
		t.Fatalf("sign-up %v / sign-in %v: no id or tokens", signup, tokens)
	}
	if got := call(api, "GET", "/user/"+id, access, nil, 200); got["email"] != email {
		t.Errorf("GET /user/%s: %v", id, got)
	}
	if got := call(api, "PUT", "/user/"+id, access, map[string]string{"name": "Alice L."}, 200); got["name"] != "Alice L." {
		t.Errorf("PUT /user/%s: %v", id, got)
	}
	call(api, "POST", "/user/token", "", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh}, 200)
	call(api, "GET", "/user/"+id+"/sessions", access, nil, 200)

	const adminPass = "an admin passphrase of some length"
	admin := exec.Command(s.compose, append(append([]string{}, s.files...),
		"run", "--rm", "-T", "--no-deps", "service", "admin", "create", "--email", "admin@example.com")...)
	admin.Env, admin.Stdin = s.env, strings.NewReader(adminPass+"\n")
	s.pm.output(t, admin)
	adminTok, _ := call(api, "POST", "/user/token", "", map[string]string{"email": "admin@example.com", "password": adminPass}, 200)["access_token"].(string)
	if list := call(api, "GET", "/user?page_size=10&q=ali", adminTok, nil, 200); !strings.Contains(fmt.Sprint(list), email) {
		t.Errorf("the admin's search for ali did not find %s: %v", email, list)
	}

	call(api, "POST", "/user/password", "", map[string]string{"email": email}, 202)
	msg := testenv.WaitMail(t, s.volumeDir(t, "mail"), email, "Reset your password", 90*time.Second)
	token := mail.ResetToken(msg.Text)
	if token == "" || !strings.Contains(msg.Text, "https://localhost:"+s.ports["HTTPS_PORT"]+"/") {
		t.Fatalf("the reset mail has no link on PUBLIC_URL with a token:\n%s", msg.Text)
	}
	const newPass = "a brand new passphrase"
	call(api, "PUT", "/user/password", "", map[string]string{"token": token, "password": newPass}, 204)
	call(api, "POST", "/user/token", "", map[string]string{"email": email, "password": pass}, 401)
	fresh := call(api, "POST", "/user/token", "", map[string]string{"email": email, "password": newPass}, 200)
	call(api, "DELETE", "/user/token", "", map[string]any{"refresh_token": fresh["refresh_token"]}, 204)
	call(api, "DELETE", "/user/"+id, adminTok, nil, 204)
	call(api, "GET", "/.well-known/jwks.json", "", nil, 200)
	call(api, "GET", "/healthz", "", nil, 200)
	// Plain HTTP redirects to HTTPS.
	res, err := hc.Get("http://127.0.0.1:" + s.ports["HTTP_PORT"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://") {
		t.Errorf("http://…/healthz: %s to %q, want a redirect to https", res.Status, loc)
	}
}

// checkHealthy waits for every service compose started to be healthy, and
// the one-shots to have exited 0, as `compose ps` shows them.
func (s *stack) checkHealthy(t *testing.T) {
	t.Helper()
	var bad []string
	n := 0
	defer func() { // Eventually's Fatal ends the test through here
		if t.Failed() {
			t.Logf("containers not as they should be: %v", bad)
		}
	}()
	testenv.Eventually(t, 3*time.Minute, "every service healthy", func() bool {
		out, err := s.try("ps", "-a", "--format", "json")
		if err != nil {
			return false
		}
		bad, n = nil, 0
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var c struct{ Name, Service, State, Health string }
			var code int
			var raw map[string]any
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("compose ps: %v\n%s", err, out)
			}
			b, _ := json.Marshal(raw)
			_ = json.Unmarshal(b, &c)
			if f, ok := raw["ExitCode"].(float64); ok {
				code = int(f)
			}
			n++
			oneShot := c.Service == "init" || c.Service == "migrate"
			if (oneShot && (c.State != "exited" || code != 0)) || (!oneShot && (c.State != "running" || c.Health != "healthy")) {
				bad = append(bad, fmt.Sprintf("%s %s %s (exit %d)", c.Name, c.State, c.Health, code))
			}
		}
		return len(bad) == 0
	})
	t.Logf("all %d containers as they should be: running and healthy, the one-shots exited 0", n)
}

// checkPrometheusTargets: Prometheus (asked inside its container: compose
// publishes no port for it) finds every usersvc replica by its compose
// service name and scrapes it: one gateway and worker, two api and service.
func checkPrometheusTargets(t *testing.T, s *stack) {
	t.Helper()
	want := map[string]int{"usersvc-gateway": 1, "usersvc-api": 2, "usersvc-service": 2, "usersvc-worker": 1}
	var got map[string]int
	testenv.Eventually(t, 3*time.Minute, "Prometheus scraping every usersvc target", func() bool {
		out, err := s.pm.try("exec", "usersvc-prometheus-1", "wget", "-qO-", "http://127.0.0.1:9090/api/v1/targets?state=active")
		if err != nil {
			return false
		}
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels map[string]string
					Health string
				}
			}
		}
		if json.Unmarshal([]byte(out), &r) != nil {
			return false
		}
		got = map[string]int{}
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health == "up" {
				got[tg.Labels["job"]]++
			}
		}
		for job, n := range want {
			if got[job] != n {
				return false
			}
		}
		return true
	})
	t.Logf("Prometheus targets up: %v", got)
}

// checkJaegerTrace: a trace in Jaeger's query API (its published UI port)
// that crosses the gateway, an API and a user service.
func checkJaegerTrace(t *testing.T, s *stack) {
	t.Helper()
	url := "http://127.0.0.1:" + s.ports["JAEGER_UI_PORT"] + "/api/traces?service=usersvc-gateway&limit=50&lookback=1h"
	var seen []string
	testenv.Eventually(t, 2*time.Minute, "a trace across gateway, api and service in Jaeger", func() bool {
		res, err := http.Get(url)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var r struct {
			Data []struct {
				Processes map[string]struct{ ServiceName string }
			}
		}
		if json.NewDecoder(res.Body).Decode(&r) != nil {
			return false
		}
		for _, tr := range r.Data {
			seen = seen[:0]
			for _, p := range tr.Processes {
				seen = append(seen, p.ServiceName)
			}
			if slices.Contains(seen, "usersvc-api") && slices.Contains(seen, "usersvc-service") {
				return true
			}
		}
		return false
	})
	slices.Sort(seen)
	t.Logf("a trace in Jaeger across %v", seen)
}
