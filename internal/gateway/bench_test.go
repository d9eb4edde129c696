package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/gateway"
)

// benchClient keeps enough connections open for b.RunParallel's goroutines.
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
}

func runGets(b *testing.B, url string) {
	c := benchClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func trivialBackend(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"42","email":"a@example.com"}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkProxy is a client → gateway → instance round trip over loopback
// HTTP/1.1 keep-alive connections, from parallel clients.
func BenchmarkProxy(b *testing.B) {
	backend := trivialBackend(b)
	disc := newFakeDiscovery()
	disc.Set(api, backend.Listener.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw, err := gateway.New(ctx, gateway.Config{Routes: []gateway.Route{{Prefix: "/user", Service: api}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, disc)
	if err != nil {
		b.Fatal(err)
	}
	for gw.Ready() != nil {
		time.Sleep(time.Millisecond) // until the Watch goroutine has run
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	runGets(b, front.URL+"/user/me")
}

// BenchmarkDirect is the same client talking to the instance itself: the
// baseline BenchmarkProxy's extra hop is measured against.
func BenchmarkDirect(b *testing.B) {
	runGets(b, trivialBackend(b).URL+"/user/me")
}
