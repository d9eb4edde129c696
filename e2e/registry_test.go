package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// TestUnreachableEtcdIsNamed: every distributed role whose etcd does not
// answer exits naming etcd and the configured address, never logs that it
// started, and the etcd client's own log lines come out in the configured
// format (text here), not as zap's JSON.
func TestUnreachableEtcdIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more
	bin := cluster.Build(t)
	for _, role := range []string{"gateway", "api", "service"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, role)
			cmd.Env = append(os.Environ(), "USERSVC_ETCD_ENDPOINTS="+dead, "USERSVC_LOG_FORMAT=text",
				"USERSVC_DATA_DIR="+filepath.Join(dir, "data"), "USERSVC_HTTP_ADDR=127.0.0.1:0",
				"USERSVC_API_ADDR=127.0.0.1:0", "USERSVC_GRPC_ADDR=127.0.0.1:0", "USERSVC_OPS_ADDR=127.0.0.1:0",
				"USERSVC_PUBLIC_URL=http://127.0.0.1:8080")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("%s with etcd down: err %v after %v, want a prompt failure\n%s", role, err, time.Since(start), &out)
			}
			want := fmt.Sprintf("etcd at %s (USERSVC_ETCD_ENDPOINTS) is unreachable", dead)
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s does not say %q:\n%s", role, want, &out)
			}
			if strings.Contains(out.String(), "started") {
				t.Errorf("%s says it started:\n%s", role, &out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if strings.HasPrefix(line, "{") {
					t.Errorf("%s wrote a JSON line with USERSVC_LOG_FORMAT=text: %s", role, line)
				}
			}
		})
	}
}

// etcdRegistry is a registry client on the etcd at endpoint, for a test to
// read what the processes registered; closed when the test ends.
func etcdRegistry(t *testing.T, endpoint string) *rpc.EtcdRegistry {
	t.Helper()
	reg, err := rpc.NewEtcdRegistry([]string{endpoint}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}
