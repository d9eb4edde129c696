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
)

// TestServeDrainsAfterLeavingTheRegistry: after SIGTERM (ctx ends) a
// registered role deregisters, then still answers for the drain delay —
// on a kept-alive connection too, which it asks the client to close — and
// only then stops. The race this closes (a request sent on a kept-alive
// connection as Shutdown closes it) is in TestDistributedDrainsOnSIGTERM.
func TestServeDrainsAfterLeavingTheRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	cfg := &config.Config{DrainDelay: 3 * time.Second, ShutdownTimeout: 5 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	deregistered := make(chan struct{})
	served := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	go func() {
		served <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ln, h, func() { close(deregistered) })
	}()

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
	<-deregistered
	if reused, closing := get("on the kept-alive connection after deregistering"); !reused || !closing {
		t.Errorf("after deregistering: reused connection %v, Connection: close %v; want both", reused, closing)
	}
	if _, closing := get("on a new connection after deregistering"); !closing {
		t.Error("after deregistering: no Connection: close on a new connection")
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
