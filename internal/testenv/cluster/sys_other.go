//go:build !linux

package cluster

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: children of a
// process that dies without running its cleanups must be ended by hand.
func sysProcAttr() *syscall.SysProcAttr { return nil }
