package app

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestPeerGate: behind the gate, an HTTP server on loopback answers the
// client that dials through the gate and nobody else, whatever headers
// the other sends (dev mode's API believes X-Forwarded-For from loopback).
func TestPeerGate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newPeerGate()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "client "+r.Header.Get("X-Forwarded-For"))
	})}
	go func() { _ = srv.Serve(g.listen(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + "/"
	get := func(c *http.Client) (string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	gateway := &http.Client{Transport: &http.Transport{DialContext: g.dial}}
	for range 2 { // a new connection and a kept-alive one
		if body, err := get(gateway); err != nil || !strings.Contains(body, "203.0.113.9") {
			t.Fatalf("through the gate: %q %v", body, err)
		}
	}
	other := &http.Client{Transport: &http.Transport{}}
	if body, err := get(other); err == nil {
		t.Fatalf("a local process around the gate got an answer: %q", body)
	}
}
