package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/nginxtest"
)

// The edge (Debian's nginx running deploy/nginx/templates/usersvc.conf.template)
// connects to the gateway from 127.0.0.1; clients in these tests connect from
// other loopback addresses, so the gateway can tell the proxy it trusts from
// a client it does not.
const edgeProxy = "127.0.0.1/32"

// behindNginx starts a cluster whose gateway trusts the edge and whose
// public URL (in mailed links) is the edge's, and the edge in front of it.
func behindNginx(t *testing.T, env map[string]string) (*cluster.Cluster, *nginxtest.Edge) {
	t.Helper()
	edge := nginxtest.New(t)
	settings := map[string]string{"USERSVC_TRUSTED_PROXIES": edgeProxy, "USERSVC_PUBLIC_URL": edge.HTTPSURL}
	for k, v := range env {
		settings[k] = v
	}
	c := startCluster(t, settings)
	edge.Start(t, c.Gateway().Addr())
	return c, edge
}

// TestNginxWalk runs the acceptance walk through nginx → gateway → API →
// service: TLS and HTTP/2 at the edge, kept-alive HTTP/1.1 to the gateway,
// and every response still the contract's (the walk validates each one,
// nginx's own 413 included).
func TestNginxWalk(t *testing.T) {
	c, edge := behindNginx(t, nil)
	hc := edge.Client(net.IPv4(127, 0, 0, 2))
	res := walk(t, target{url: edge.HTTPSURL, mailDir: c.MailDir(), admin: c.Admin, hc: hc})
	if t.Failed() {
		return
	}

	// One request ID, a traceparent: nginx logs both, passes both on, and
	// the API that served it logs the client's real address.
	cl := apiclient.New(t, edge.HTTPSURL)
	cl.HTTP = hc
	id := "e2e-edge-" + res.User.ID
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := cl.Exchange(apiclient.Request{Method: "GET", Path: "/user/" + res.User.ID, Valid: true,
		Header: http.Header{"Authorization": {"Bearer " + res.User.Access}, "Traceparent": {tp}}}.WithID(id)).WantStatus(200)
	if hsts := r.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("no HSTS on a proxied response: %q", hsts)
	}
	e := edge.Entry(t, id)
	for k, want := range map[string]any{"client.ip": "127.0.0.2", "http.version": "HTTP/2.0", "url.scheme": "https",
		"http.request.method": "GET", "http.response.status_code": 200.0, "nginx.upstream.address": c.Gateway().Addr(),
		"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "url.path": "/user/" + res.User.ID} {
		if e[k] != want {
			t.Errorf("access log %s = %v, want %v (line %v)", k, e[k], want, e)
		}
	}
	if _, ok := e["@timestamp"].(string); !ok {
		t.Errorf("access log line without @timestamp: %v", e)
	}
	line := apiLogLine(t, c, id)
	if !strings.Contains(line, `"client.ip":"127.0.0.2"`) {
		t.Errorf("the API logged request %s without the real client address 127.0.0.2: %s", id, line)
	}
	// Every line of the log is ECS JSON with a request ID.
	for _, e := range edge.Entries(t) {
		if e["http.request.id"] == "" || e["event.dataset"] != "nginx.access" {
			t.Errorf("access log line %v", e)
		}
	}
}

// TestNginxTLS checks the edge's transport: HTTP/2 on TLS 1.2 or later
// (1.1 refused), HSTS on proxied answers, the plain port redirecting to
// TLS, and the health location on both.
func TestNginxTLS(t *testing.T) {
	_, edge := behindNginx(t, nil)
	hc := edge.Client(nil)
	// HTTP/2 over TLS 1.2 or later; nothing older is spoken.
	resp0, err := hc.Get(edge.HTTPSURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp0.Body.Close()
	if resp0.ProtoMajor != 2 || resp0.TLS == nil || resp0.TLS.Version < tls.VersionTLS12 {
		t.Errorf("edge answered over %s, TLS %+v; want HTTP/2 on TLS >= 1.2", resp0.Proto, resp0.TLS)
	}
	old := &tls.Config{RootCAs: edge.Roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", strings.TrimPrefix(edge.HTTPSURL, "https://"), old); err == nil {
		_ = conn.Close()
		t.Errorf("a TLS 1.1 handshake succeeded")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake failed for another reason than the version: %v", err)
	}

	// The plain port redirects to TLS and answers health; health on TLS too.
	plain := edge.Client(nil)
	resp, err := plain.Get(edge.HTTPURL + "/user/x")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect ||
		!strings.HasPrefix(loc, "https://127.0.0.1") || !strings.HasSuffix(loc, "/user/x") {
		t.Errorf("plain HTTP answered %d Location %q, want 308 to https", resp.StatusCode, loc)
	}
	for _, u := range []string{edge.HTTPURL, edge.HTTPSURL} {
		resp, err := plain.Get(u + "/nginx/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s/nginx/healthz: %d", u, resp.StatusCode)
		}
	}
	if hsts := resp0.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("no HSTS on a proxied response: %q", hsts)
	}
}

// TestNginxClientAddress checks that the per-IP limit of the API counts the
// address that connected to nginx, and that a client cannot move itself
// into another bucket with its own X-Forwarded-For, through nginx or by
// going around it to the gateway.
func TestNginxClientAddress(t *testing.T) {
	// Two APIs share the window through Redis, as deployed.
	rd := startPrivateRedis(t)
	c, edge := behindNginx(t, map[string]string{"USERSVC_RATE_LOGIN_IP": "3/1m", "USERSVC_REDIS_URL": rd.url()})
	login := map[string]any{"email": "nobody@example.com", "password": "not the password"}

	// Client 127.0.0.3 tries four sign-ins, each claiming another address.
	spoofer := apiclient.New(t, edge.HTTPSURL)
	spoofer.HTTP = edge.Client(net.IPv4(127, 0, 0, 3))
	for i := range 3 {
		spoofer.Exchange(apiclient.Request{Method: "POST", Path: "/user/token", Body: mustJSON(t, login), Valid: true,
			Header: http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i+1)}}}).
			WantError(401, "unauthenticated")
	}
	id := "e2e-spoof-" + fmt.Sprint(time.Now().UnixNano())
	r := spoofer.Exchange(apiclient.Request{Method: "POST", Path: "/user/token", Body: mustJSON(t, login), Valid: true,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {"198.51.100.7"}}}.WithID(id))
	r.WantError(429, "resource_exhausted")
	// It was the API's limiter, not nginx's: the gateway answered it.
	if e := edge.Entry(t, id); e["nginx.upstream.status"] != "429" {
		t.Errorf("the 429 did not come from upstream: %v", e)
	}
	if line := apiLogLine(t, c, id); !strings.Contains(line, `"client.ip":"127.0.0.3"`) {
		t.Errorf("the API took request %s for another client than 127.0.0.3: %s", id, line)
	}

	// Another client (127.0.0.4) has its own budget: the limiter keys by
	// the real address, not by one shared proxy address.
	other := apiclient.New(t, edge.HTTPSURL)
	other.HTTP = edge.Client(net.IPv4(127, 0, 0, 4))
	other.Do("POST", "/user/token", "", login).WantError(401, "unauthenticated")

	// Around nginx, straight to the gateway: the gateway does not trust
	// 127.0.0.5, so its X-Forwarded-For is overwritten, and the fourth
	// sign-in is refused whatever it claims.
	direct := apiclient.New(t, c.GatewayURL())
	direct.HTTP = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}}).DialContext}}
	for i := range 4 {
		r := direct.Exchange(apiclient.Request{Method: "POST", Path: "/user/token", Body: mustJSON(t, login), Valid: true,
			Header: http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {fmt.Sprintf("192.0.2.%d", i+1)}}})
		if i < 3 {
			r.WantError(401, "unauthenticated")
		} else {
			r.WantError(429, "resource_exhausted")
		}
	}
}

// TestNginxCredentialFlood checks nginx's own first line of defence: a
// burst of password-reset requests from one address beyond the zone's
// burst is refused at the edge, in the API's envelope, before it costs the
// service anything; other paths are not limited.
func TestNginxCredentialFlood(t *testing.T) {
	_, edge := behindNginx(t, nil)
	cl := apiclient.New(t, edge.HTTPSURL)
	cl.HTTP = edge.Client(net.IPv4(127, 0, 0, 6))
	// Sent at once: the zone admits a burst of 20 plus 5 a second, so at
	// least 40 of 60 concurrent requests are over it however slow the
	// machine is.
	const n = 60
	statuses := make([]int, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("e2e-flood-%d-%d", time.Now().UnixNano(), i)
		wg.Go(func() {
			r, err := cl.Try(t.Context(), apiclient.Request{Method: "POST", Path: "/user/password", Valid: true,
				Body:   mustJSON(t, map[string]any{"email": "nobody@example.com"}),
				Header: http.Header{"Content-Type": {"application/json"}}}.WithID(ids[i]))
			if err != nil {
				t.Errorf("%v", err)
				return
			}
			if r.CheckErr != nil {
				t.Errorf("%v", r.CheckErr)
			}
			statuses[i] = r.Status
			if r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
	wg.Wait()
	var accepted, limited int
	for i, s := range statuses {
		switch s {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
			if e := edge.Entry(t, ids[i]); e["nginx.limit_req.status"] != "REJECTED" || e["nginx.upstream.address"] != "" {
				t.Errorf("a 429 that nginx did not answer itself: %v", e)
			}
		default:
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if accepted < 20 || limited < n/2 {
		t.Errorf("%d accepted and %d limited of %d; want the burst of 20 through and most of the rest refused",
			accepted, limited, n)
	}
	t.Logf("flood of %d concurrent resets from one address: %d passed, %d refused by nginx", n, accepted, limited)
	// Reading is not limited at the edge.
	for range 30 {
		cl.Do("GET", "/.well-known/jwks.json", "", nil).WantStatus(200)
	}
}

// apiLogLine waits for the API log line of request id and returns it.
func apiLogLine(t *testing.T, c *cluster.Cluster, id string) string {
	t.Helper()
	var found string
	testenv.Eventually(t, 5*time.Second, "the API's access line for request "+id, func() bool {
		for _, api := range c.APIs() {
			for _, line := range strings.Split(api.Logs(), "\n") {
				if strings.Contains(line, `"transaction.id":"`+id+`"`) && strings.Contains(line, `"client.ip"`) {
					found = line
					return true
				}
			}
		}
		return false
	})
	return found
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNginxPages reaches the web pages through the edge: they are routed
// (nginx → gateway → API), keep their security headers, and under the
// https public URL the cookies are Secure with the __Host- prefix; a form
// posted with the edge's own Origin passes the origin check, one from
// elsewhere does not; the reset token never reaches the access log.
func TestNginxPages(t *testing.T) {
	c, edge := behindNginx(t, nil)
	c.Admin(t, "root@example.com", browserAdminPW)
	hc := edge.Client(net.IPv4(127, 0, 0, 7))
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (*http.Response, string) {
		resp, err := hc.Get(edge.HTTPSURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	const token = "edge-token-that-must-not-be-logged"
	for _, path := range []string{"/reset-password?token=" + token, "/admin", "/account", "/static/style.css"} {
		resp, _ := get(path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
			resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s through the edge = %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	resp, body := get("/admin")
	var csrf *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-usersvc_csrf" {
			csrf = ck
		}
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || m == nil || m[1] != csrf.Value {
		t.Fatalf("CSRF cookie %+v and form token %v", csrf, m)
	}
	signIn := func(origin string) *http.Response {
		form := url.Values{"email": {"root@example.com"}, "password": {browserAdminPW}, "csrf": {m[1]}}
		req, _ := http.NewRequest("POST", edge.HTTPSURL+"/admin/sign-in", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.AddCookie(csrf)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := signIn("https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with a foreign Origin through the edge = %d, want 403", r.StatusCode)
	}
	r := signIn(edge.HTTPSURL)
	var sess *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == "__Host-usersvc_session" {
			sess = ck
		}
	}
	if r.StatusCode != http.StatusSeeOther || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Errorf("sign-in through the edge = %d, session cookie %+v", r.StatusCode, sess)
	}
	for _, e := range edge.Entries(t) {
		if p, _ := e["url.path"].(string); strings.Contains(p, token) {
			t.Errorf("the reset token is in the edge's access log: %v", e)
		}
	}
	for _, api := range c.APIs() {
		if strings.Contains(api.Logs(), token) {
			t.Error("the reset token is in the API's log")
		}
	}
}
