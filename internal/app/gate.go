package app

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// peerGate admits to a listener only the connections dialled through it.
// In dev mode the API's internal listener is on loopback and believes the
// X-Forwarded-For of loopback peers, which is any process on the machine;
// through the gate it hears the gateway beside it and nobody else, so no
// local process can choose the client address the per-IP limits count.
//
// The gate knows its connections by their local address, recorded when
// the dial returns; the listener's side checks its peer's address once the
// first bytes arrive, which the dialler can only send after that.
type peerGate struct {
	mu     sync.Mutex
	dialed map[string]bool
}

func newPeerGate() *peerGate { return &peerGate{dialed: map[string]bool{}} }

// dial connects like the gateway's own dialler and records the connection.
func (g *peerGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	local := c.LocalAddr().String()
	g.mu.Lock()
	g.dialed[local] = true
	g.mu.Unlock()
	return &gateClientConn{Conn: c, forget: func() {
		g.mu.Lock()
		delete(g.dialed, local)
		g.mu.Unlock()
	}}, nil
}

func (g *peerGate) admits(peer string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dialed[peer]
}

// listen wraps ln so each accepted connection reads only if the gate
// dialled it.
func (g *peerGate) listen(ln net.Listener) net.Listener { return gateListener{Listener: ln, g: g} }

// gateClientConn forgets its address when closed: the port may next be
// another process's.
type gateClientConn struct {
	net.Conn
	once   sync.Once
	forget func()
}

func (c *gateClientConn) Close() error {
	c.once.Do(c.forget)
	return c.Conn.Close()
}

type gateListener struct {
	net.Listener
	g *peerGate
}

func (l gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gateServerConn{Conn: c, g: l.g}, nil
}

// errNotGateway ends a connection the gate did not dial.
var errNotGateway = errors.New("connection not from the gateway: closed")

type gateServerConn struct {
	net.Conn
	g        *peerGate
	checked  sync.Once
	admitted bool
}

func (c *gateServerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.checked.Do(func() { c.admitted = c.g.admits(c.RemoteAddr().String()) })
	if !c.admitted {
		_ = c.Conn.Close()
		return 0, errNotGateway
	}
	return n, err
}
