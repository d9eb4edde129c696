package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FindFreeAddr returns a loopback host:port whose port was free a moment
// ago. Another process may take it before the caller listens: callers that
// start a server on it retry on "address in use", and the kernel keeps
// ephemeral ports in rotation, so that is rare. It is the one free-port
// helper of the tests.
func FindFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
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
