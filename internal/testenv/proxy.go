package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP relay on 127.0.0.1 in front of a server, for tests that
// need that server to go away: cutting the proxy is, to the clients behind
// it, the server crashing or the network failing, while the server itself
// (often the machine's shared one) never notices. It is the one way the
// tests simulate an outage; never stop a shared server.
//
// Down cuts every connection and refuses new ones until Up; the listening
// port is kept throughout, and while down a connection is accepted and
// closed at once, so a client fails fast (EOF) instead of waiting for a
// timeout and never meets the port taken by someone else. Close ends the
// proxy for good, releasing the port (a crashed server's port is closed).
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewProxy starts a proxy (up) in front of target (host:port); it is closed
// when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy to %s: %v", target, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to give clients instead of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Down cuts every connection through the proxy and refuses new ones until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	p.closeConns()
}

// Up lets connections through again.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Close cuts every connection and closes the listener; idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.ln.Close()
	p.closeConns()
}

func (p *Proxy) closeConns() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *Proxy) refusing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down || p.closed
}

func (p *Proxy) pipe(c net.Conn) {
	if p.refusing() {
		c.Close()
		return
	}
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, u) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done // either side ended: end both
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// track registers the connection pair, or closes both when the proxy went
// down while the upstream was being dialled.
func (p *Proxy) track(c, u net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		c.Close()
		u.Close()
		return false
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	return true
}
