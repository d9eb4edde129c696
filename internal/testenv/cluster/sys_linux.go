package cluster

import "syscall"

// sysProcAttr asks the kernel to SIGKILL a child when the process that
// started it dies. A test binary that panics on -timeout, or a load
// program killed with ^C, never runs its cleanups; without this its
// children would live on, holding ports and database connections.
//
// Linux delivers the signal when the thread that forked the child exits,
// not the process; the Go runtime keeps its threads alive (unless a
// goroutine exits while locked to its thread), so in practice it is the
// process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
