package rpc

import (
	"testing"
	"time"
)

// etcdRegistry is an EtcdRegistry on endpoint, closed when the test ends.
func etcdRegistry(t testing.TB, endpoint string, timeout time.Duration) *EtcdRegistry {
	t.Helper()
	reg, err := NewEtcdRegistry([]string{endpoint}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// TestEtcdRegistry is etcdRegistry for the external test package.
var TestEtcdRegistry = etcdRegistry
