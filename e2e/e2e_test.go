package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBuild()
	os.Exit(code)
}

// startCluster starts etcd, a fresh database and a cluster of 2 services,
// 2 APIs and a gateway; env adds USERSVC_* settings (cluster.Options.Env).
func startCluster(t *testing.T, env map[string]string) *cluster.Cluster {
	t.Helper()
	dsn := testenv.MySQLDSN(t) // skips (or fails under USERSVC_TEST_REQUIRE_ALL=1) without MariaDB
	etcd := etcdtest.StartEtcd(t)
	start := time.Now()
	c := cluster.Start(t, cluster.Options{Services: 2, APIs: 2, MySQLDSN: dsn, Etcd: etcd, Env: env})
	t.Logf("cluster of 2 services, 2 APIs and a gateway ready in %s at %s", time.Since(start).Round(time.Millisecond), c.GatewayURL())
	return c
}

// TestDistributedWalk walks the whole API through the gateway of a
// distributed deployment: every request crosses gateway → API → service
// over real sockets, with instances found in etcd, state in MariaDB and
// reset mail written by whichever service's relay takes the event.
func TestDistributedWalk(t *testing.T) {
	c := startCluster(t, nil)
	res := walk(t, target{url: c.GatewayURL(), mailDir: c.MailDir(), admin: c.Admin})
	if t.Failed() {
		return
	}
	// The gateway passed the client's request ID on to the API that
	// served the request, so one ID finds the request in every log.
	cl := apiclient.New(t, c.GatewayURL())
	id := "e2e-trace-" + res.User.ID
	cl.Exchange(apiclient.Request{Method: "GET", Path: "/user/" + res.User.ID, Header: apiclient.Bearer(res.User.Access),
		Valid: true}.WithID(id)).WantStatus(200)
	found := false
	for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, api := range c.APIs() {
			found = found || api.LogsContain(`"transaction.id":"`+id+`"`)
		}
	}
	if !found {
		t.Errorf("no API logged request ID %s", id)
	}
}

// TestDevWalk walks the API of `usersvc dev` (SQLite, in-process
// registry, one process), then restarts it on the same data directory: the
// data, the signing keys and so the sessions survive.
func TestDevWalk(t *testing.T) {
	p, url := cluster.StartDev(t, nil)
	res := walk(t, target{url: url, mailDir: p.Getenv("USERSVC_MAIL_DIR"), admin: p.Admin})
	if t.Failed() {
		return
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("stop dev: %v", err)
	}

	p2, url2 := cluster.StartDev(t, map[string]string{"USERSVC_DATA_DIR": p.Getenv("USERSVC_DATA_DIR")})
	if p2.Getenv("USERSVC_MAIL_DIR") != p.Getenv("USERSVC_MAIL_DIR") {
		t.Errorf("restart on another mail dir")
	}
	c := apiclient.New(t, url2)
	// An access token from before the restart still verifies: the key is
	// the one on disk, and the session is in the database.
	var u apiclient.User
	c.Do("GET", "/user/"+res.User.ID, res.User.Access, nil).WantStatus(200).Decode(&u)
	if u.Email != res.User.Email || u.Name != res.Name {
		t.Errorf("after restart: %+v", u)
	}
	// The user signs in with the password set before the restart; the old
	// one stays wrong.
	tok := login(c, res.User.Email, res.User.Password)
	c.Do("GET", "/user/"+res.User.ID, tok.AccessToken, nil).WantStatus(200)
	c.Do("POST", "/user/token", "", map[string]any{"email": res.User.Email, "password": userPassword}).
		WantError(401, "unauthenticated")
	// And the admin still sees everyone who was left.
	admin := login(c, res.Admin.Email, res.Admin.Password)
	var page apiclient.UserList
	c.Do("GET", "/user", admin.AccessToken, nil).WantStatus(200).Decode(&page)
	if page.Total != int64(res.Users) || len(page.Users) != res.Users {
		t.Errorf("after restart the admin lists %d users (total %d), want %d", len(page.Users), page.Total, res.Users)
	}
}
