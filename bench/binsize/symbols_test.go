package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSymbolModule(t *testing.T) {
	mods := []string{"github.com/usersvc/usersvc", "github.com/redis/go-redis/v9", "go.etcd.io/etcd/client/v3", "github.com/redis/go-redis/extra/redisotel/v9",
		"github.com/nats-io/nats.go", "go-micro.dev/v6"}
	for name, want := range map[string]string{
		"github.com/redis/go-redis/v9.(*Client).Get":                           "github.com/redis/go-redis/v9",
		"type:*github.com/redis/go-redis/v9.Client":                            "github.com/redis/go-redis/v9",
		"github.com/redis/go-redis/v9/internal/pool.(*ConnPool).Get":           "github.com/redis/go-redis/v9",
		"github.com/redis/go-redis/extra/redisotel/v9.InstrumentTracing":       "github.com/redis/go-redis/extra/redisotel/v9",
		"go:itab.*go-micro.dev/v6/server.router,go-micro.dev/v6/server.Router": "go-micro.dev/v6",
		"github.com/nats-io/nats%2ego.(*Conn).Publish":                         "github.com/nats-io/nats.go",
		"slices.SortFunc[go.shape.[]github.com/redis/go-redis/v9.Cmder]":       stdlib,
		"go-micro.dev/v6/cmd.init.func1":                                       "go-micro.dev/v6",
		"runtime.findfunctab":                                                  stdlib,
		"vendor/golang.org/x/net/idna.idnaValues":                              stdlib,
		"go:func.*": funcdata,
		"type:.eq.go-micro.dev/v6/server.rpcRequest":                        "go-micro.dev/v6",
		"go.etcd.io/etcd/client/v3.(*retryOption).google.golang.org/grpc.x": "go.etcd.io/etcd/client/v3",
		"struct { sync.Mutex; database/sql.x int }":                         anonymous,
		"go.shape.struct { net/netip.isV6 bool }":                           anonymous,
		"main.main":       "github.com/usersvc/usersvc",
		"example.org/x.F": "example.org/x.F (no module)",
	} {
		if got := moduleOf(symbolOwner(name), mods); got != want {
			t.Errorf("%s: module %q, want %q", name, got, want)
		}
	}
}

// binsize built unstripped (go test strips its binaries) is a Go binary
// with build info: its symbols must be found and this module's code must
// be among them.
func TestModuleSizesOfItself(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "binsize")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sizes, err := moduleSizes(exe)
	if err != nil {
		t.Fatal(err)
	}
	if sizes[stdlib] < 100_000 {
		t.Errorf("standard library: %d bytes of symbols, want the runtime at least", sizes[stdlib])
	}
	if sizes["github.com/usersvc/usersvc"] == 0 {
		t.Errorf("no symbols of this module: %v", sizes)
	}
	for m := range sizes {
		if strings.HasSuffix(m, "(no module)") {
			t.Errorf("symbols outside every module: %s", m)
		}
	}
	var b strings.Builder
	writeTable(&b, []map[string]int64{sizes, sizes}, 1)
	if !strings.Contains(b.String(), "| **all symbols** |") || !strings.Contains(b.String(), "other modules") {
		t.Errorf("table:\n%s", b.String())
	}
}
