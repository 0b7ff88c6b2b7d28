//go:build unix && !linux

package agent

import "syscall"

// sysProcAttr puts the process in its own group so the group can be
// signalled. Without Pdeathsig (Linux only) the process outlives an agent
// killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// hideSecrets does nothing outside Linux.
func hideSecrets() error { return nil }
