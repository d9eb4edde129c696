package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/testenv"
)

// TestServeDrains: after SIGTERM (ctx ends) a role leaves the registry
// (the API; a gateway has none), then still answers for the drain delay —
// on a kept-alive connection too, which it asks the client to close — and
// only then stops. The race this closes (a request sent on a kept-alive
// connection as Shutdown closes it) is in TestDistributedDrainsOnSIGTERM.
func TestServeDrains(t *testing.T) {
	for _, registered := range []bool{true, false} {
		name := map[bool]string{true: "api, leaving the registry", false: "gateway"}[registered]
		t.Run(name, func(t *testing.T) { testServeDrains(t, registered) })
	}
}

func testServeDrains(t *testing.T, registered bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	cfg := &config.Config{ShutdownTimeout: 5 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stopping := make(chan struct{}) // closed when it leaves the registry
	d := drain{delay: 3 * time.Second}
	if registered {
		d.leave = func() { close(stopping) }
	}
	served := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	go func() { served <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ln, h, d) }()

	hc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(what string) (reused, closing bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(),
			&httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%s: %d %q", what, resp.StatusCode, b)
		}
		return reused, resp.Close
	}
	if _, closing := get("before the stop"); closing {
		t.Fatal("Connection: close before the stop")
	}
	stop()
	if registered {
		<-stopping // it leaves the registry before anything else
	}
	// The kept-alive connection's next answer carries Connection: close
	// once the drain has begun (just after leaving the registry); until
	// then the connection stays open and is reused.
	testenv.Eventually(t, 2*time.Second, "the drain to begin", func() bool {
		reused, closing := get("on the kept-alive connection while stopping")
		if !reused {
			t.Fatal("a new connection while stopping: the kept-alive one was closed under the client")
		}
		return closing
	})
	if _, closing := get("on a new connection during the drain"); !closing {
		t.Error("during the drain: no Connection: close on a new connection")
	}
	select {
	case err := <-served:
		t.Fatalf("serve returned within the drain delay: %v", err)
	default:
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
