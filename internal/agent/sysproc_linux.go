package agent

import "syscall"

// sysProcAttr puts the process in its own group (so the group can be
// signalled) and asks the kernel to SIGKILL it when the agent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// hideSecrets makes the agent process non-dumpable. Its /proc/<pid> files,
// environ (which still holds the node token it was started with) among
// them, then belong to root, and attempts running as the agent's user can
// neither read them nor ptrace the agent.
func hideSecrets() error {
	const prSetDumpable = 4
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
