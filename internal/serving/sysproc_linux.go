package serving

import "syscall"

// sysProcAttr puts a worker in its own process group (so the group can be
// signalled) and asks the kernel to SIGKILL it when the server dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
