package agent

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// process is a started attempt process.
type process struct {
	pid   int
	done  chan struct{}    // closed once the process is reaped
	state *os.ProcessState // set before done closes; nil if Wait failed
}

// startProcess starts cmd in its own process group and reaps it in the
// background. The goroutine that starts it keeps its OS thread locked until
// the process is reaped, because Pdeathsig fires when the parent *thread*
// exits: the process gets SIGKILL if the agent dies, and not before.
func startProcess(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = sysProcAttr()
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		_ = cmd.Wait() // the exit status is in ProcessState
		p.state = cmd.ProcessState
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// killGroup signals the process's whole group. Errors are ignored: ESRCH
// means the group is gone already.
func (p *process) killGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.pid, sig)
}
