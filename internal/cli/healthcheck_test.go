package cli_test

import (
	"github.com/usersvc/usersvc/internal/testenv"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/buildinfo"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// TestMain removes the usersvc binary TestHealthcheck's dev process ran.
func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBuild()
	os.Exit(code)
}

// TestHealthcheck probes a real `usersvc dev` process the way a container
// runtime does: by its configured listener, or by --url.
func TestHealthcheck(t *testing.T) {
	p, url := cluster.StartDev(t, nil)
	_, port, err := net.SplitHostPort(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// Listening on every interface is what a container does; the probe
	// dials loopback. The API and ops listeners of this env are closed
	// ports, as in a container of another role.
	e := newEnv(t)
	e["USERSVC_HTTP_ADDR"] = "0.0.0.0:" + port
	e["USERSVC_API_ADDR"] = testenv.FreeAddr(t)
	e["USERSVC_OPS_ADDR"] = testenv.FreeAddr(t)
	r := run(t, e, "", "healthcheck")
	expect(t, r, 0)
	if !strings.Contains(r.stdout, "http://127.0.0.1:"+port+"/healthz ok") {
		t.Errorf("stdout %q", r.stdout)
	}
	expect(t, run(t, e, "", "healthcheck", "--url", url+"/readyz"), 0)
	// A listener that answers, but not 200: unhealthy, whatever comes next.
	expect(t, run(t, e, "", "healthcheck", "--url", url+"/no-such-probe"), 1, "404")

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, e, "", "healthcheck"), 1, "nothing answered", "connection refused")
}

func TestVersion(t *testing.T) {
	r := run(t, env{}, "", "version")
	expect(t, r, 0)
	if strings.TrimSpace(r.stdout) != buildinfo.String() || !strings.HasPrefix(r.stdout, "usersvc dev (commit unknown, go") {
		t.Errorf("version printed %q", r.stdout)
	}
}
