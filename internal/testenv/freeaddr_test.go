package testenv

import "testing"

// TestFreeAddrsAreDistinct: however the kernel hands ports out, no address
// is returned twice in one process (a repeat put kube-apiserver on an etcd
// peer's port).
func TestFreeAddrsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
