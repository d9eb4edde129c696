package testenv

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// handedOut are the addresses FindFreeAddr has returned in this process.
// A port is free again the moment its probe listener closes, so two calls
// in a row can get the same one from the kernel (it happened: an etcd
// peer port and kube-apiserver's secure port, chosen one after the other,
// were one port, and the API server could not bind); no address is
// handed out twice.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// FindFreeAddr returns a loopback host:port whose port was free a moment
// ago and that no earlier call in this process returned. Another process
// may take it before the caller listens: callers that start a server on it
// retry on "address in use", and the kernel keeps ephemeral ports in
// rotation, so that is rare. It is the one free-port helper of the tests.
func FindFreeAddr() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("find a free port: every port the kernel offered was handed out already")
}

// FreeAddr is FindFreeAddr that fails the test on error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := FindFreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// FreePort is the port of FreeAddr.
func FreePort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
