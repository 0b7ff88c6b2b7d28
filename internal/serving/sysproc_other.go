//go:build unix && !linux

package serving

import "syscall"

// sysProcAttr puts a worker in its own process group so the group can be
// signalled. Without Pdeathsig (Linux only) workers outlive a server killed
// with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
