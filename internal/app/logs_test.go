package app

import (
	"context"
	"encoding/json"
	stdlog "log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/grpclog"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
)

// TestEveryLogLineJSONDuringOutages: with the process's logger installed
// (UseLogger), an etcd outage and a MySQL outage, each cut through a proxy,
// write their lines — the registration renewal's, the MySQL driver's,
// go-micro's, gRPC's, the stdlib log package's — as JSON into that logger's output
// and nowhere else.
func TestEveryLogLineJSONDuringOutages(t *testing.T) {
	out := &testenv.LogBuffer{}
	useLoggerForTest(t, NewLogger(&config.Config{LogFormat: "json", LogLevel: "info"}, out, "usersvc-test"))

	etcd := testenv.NewProxy(t, etcdtest.StartEtcd(t))
	reg, err := rpc.NewEtcdRegistry([]string{etcd.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	deregister, err := rpc.RegisterHTTP(reg, "usersvc.logprobe", "127.0.0.1:1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer deregister()
	etcd.Down()
	testenv.Eventually(t, 10*time.Second, "the renewal failure to be logged", func() bool {
		return out.Count("registry: renewing registration failed") > 0
	})
	etcd.Up()

	mysqlOutage(t)
	testenv.Eventually(t, 10*time.Second, "the MySQL driver's line", func() bool {
		return out.Count("closing bad idle connection") > 0
	})
	stdlog.Print("a library's line through the stdlib log package")
	grpclog.Error("a gRPC error line")
	if out.Count("a gRPC error line") != 1 {
		t.Errorf("gRPC's error line did not reach the logger")
	}

	checkJSONLines(t, out.String(), "a library's line")
}

// useLoggerForTest installs log with UseLogger and puts the previous
// loggers back when the test ends.
func useLoggerForTest(t *testing.T, log *slog.Logger) {
	prev, flags := slog.Default(), stdlog.Flags()
	UseLogger(log)
	t.Cleanup(func() {
		slog.SetDefault(prev) // the original default also gives the log package its output back
		stdlog.SetFlags(flags)
		rpc.UseLogger(prev)
		_ = mysql.SetLogger(mysql.Logger(stdlog.New(stdlog.Writer(), "[mysql] ", stdlog.LstdFlags)))
	})
}

// mysqlOutage makes the driver meet a dead idle connection: one pooled
// connection through a proxy, cut, and the next query on it.
func mysqlOutage(t *testing.T) {
	dsn, p := testenv.MySQLBehindProxy(t)
	st, err := sqlstore.Open(testenv.Context(t), "mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p.Down()
	p.Up()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Ping(ctx); err != nil { // the driver drops the dead one and dials again
		t.Fatalf("ping after the proxy came back: %v", err)
	}
}

// checkJSONLines fails for every line of out that is not a JSON object,
// and unless each of want appears in a message.
func checkJSONLines(t *testing.T, out string, want ...string) {
	t.Helper()
	var messages []string
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		msg, _ := rec["message"].(string)
		messages = append(messages, msg)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(messages, "\n"), w) {
			t.Errorf("no message contains %q; messages: %q", w, messages)
		}
	}
}
