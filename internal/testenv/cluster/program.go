package cluster

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// Program is a TB for programs outside `go test`, such as a load
// generator that wants a real cluster to aim at:
//
//	p := cluster.NewProgram(os.Stderr)
//	defer p.Close()
//	c := cluster.Start(p, cluster.Options{MySQLDSN: dsn, Etcd: endpoint})
//
// Logf and Errorf write to the writer; Fatalf writes, runs the cleanups
// (stopping the cluster) and exits with status 1, the counterpart of a
// test's FailNow. Close runs the cleanups, last registered first, and
// removes the binary Build made; call it before the program exits.
type Program struct {
	w io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// NewProgram returns a Program logging to w (os.Stderr if nil).
func NewProgram(w io.Writer) *Program {
	if w == nil {
		w = os.Stderr
	}
	return &Program{w: w}
}

// Helper does nothing: there is no test output to attribute lines in.
func (p *Program) Helper() {}

// Logf writes a line.
func (p *Program) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Errorf writes a line and marks the program failed.
func (p *Program) Errorf(format string, args ...any) {
	p.Logf(format, args...)
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

// Fatalf writes a line, runs the cleanups and exits with status 1.
func (p *Program) Fatalf(format string, args ...any) {
	p.Errorf(format, args...)
	p.Close()
	os.Exit(1)
}

// Cleanup registers f to run at Close.
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// TempDir creates a directory that Close removes.
func (p *Program) TempDir() string {
	dir, err := os.MkdirTemp("", "usersvc-cluster-")
	if err != nil {
		p.Fatalf("cluster: temp dir: %v", err)
	}
	p.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Failed reports whether Errorf or Fatalf was called.
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Close runs the cleanups, last registered first, and removes the binary
// Build made. It may be called more than once; each cleanup runs once.
func (p *Program) Close() {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		f()
	}
	RemoveBuild()
}
