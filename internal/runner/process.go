package runner

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/kfn-dev/kfn/internal/contract"
)

const (
	// killGrace is how long the user's process has to exit after SIGTERM
	// before it is killed.
	killGrace = 2 * time.Second
	// drainTimeout bounds the wait for the end of stdout and stderr once the
	// process group is gone: a descendant that left the group may keep the
	// pipes open forever.
	drainTimeout = time.Second
)

// capture collects one output stream of the child. Reading starts at once and
// never stops, so that the child never blocks on a full pipe; only the tail
// is kept.
type capture struct {
	r, w *os.File
	tail tailBuffer
	done chan struct{}
}

func newCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &capture{r: r, w: w, tail: tailBuffer{limit: contract.MaxOutputBytes}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		// The only read errors are the deadline or close set by finish.
		_, _ = io.Copy(&c.tail, r)
	}()
	return c, nil
}

// detach closes the runner's copy of the write end: from then on the stream
// ends when the child and its descendants have closed theirs.
func (c *capture) detach() {
	c.w.Close()
}

// finish waits for the end of the stream, at most until deadline, and
// returns what was kept.
func (c *capture) finish(deadline time.Time) *tailBuffer {
	// Pipes from os.Pipe are pollable, so a deadline interrupts a pending read.
	_ = c.r.SetReadDeadline(deadline)
	<-c.done
	c.r.Close()
	return &c.tail
}

// child is the user's process, leader of its own process group.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *capture
	exited         chan struct{} // closed when cmd.Wait has returned
	waitErr        error
}

// ending tells how the wait for the child ended.
type ending struct {
	state    *os.ProcessState // nil if waiting failed (see waitErr)
	waitErr  error
	timedOut bool
	signal   syscall.Signal // the runner's own termination signal, if any
	// survivors counts the processes of the code that could not be killed.
	survivors int
}

func startChild(command, env []string, stdin *os.File) (*child, error) {
	stdout, err := newCapture()
	if err != nil {
		return nil, err
	}
	stderr, err := newCapture()
	if err != nil {
		stdout.detach()
		stdout.finish(time.Now())
		return nil, err
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = env
	// A file rather than a pipe: the child reads the body at its own pace
	// and nothing in the runner can block on a child that does not read it.
	cmd.Stdin = stdin
	cmd.Stdout, cmd.Stderr = stdout.w, stderr.w
	// An own process group, so that timeouts and signals reach everything
	// the code spawned and not only its top process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	stdout.detach()
	stderr.detach()
	if err != nil {
		stdout.finish(time.Now())
		stderr.finish(time.Now())
		return nil, err
	}
	c := &child{cmd: cmd, stdout: stdout, stderr: stderr, exited: make(chan struct{})}
	go func() {
		defer close(c.exited)
		c.waitErr = cmd.Wait()
	}()
	return c, nil
}

// wait waits until the child exits, stopping it when timeout (if non-zero)
// expires or when the runner receives a signal. It then kills whatever the
// child left running, in its group or not: there is no one left to report
// to, and nothing may write after the runner has reported.
func (c *child) wait(timeout time.Duration, signals <-chan os.Signal) ending {
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	var end ending
	select {
	case <-c.exited:
	case <-expired:
		end.timedOut = true
		c.stop(syscall.SIGTERM)
	case sig := <-signals:
		end.signal = sig.(syscall.Signal)
		c.stop(end.signal)
	}
	c.signalGroup(syscall.SIGKILL)
	end.survivors = killDescendants()
	end.state, end.waitErr = c.cmd.ProcessState, c.waitErr
	return end
}

// stop forwards sig to the group and kills the group if the child has not
// exited after killGrace.
func (c *child) stop(sig syscall.Signal) {
	c.signalGroup(sig)
	select {
	case <-c.exited:
	case <-time.After(killGrace):
		c.signalGroup(syscall.SIGKILL)
		<-c.exited
	}
}

func (c *child) signalGroup(sig syscall.Signal) {
	// ESRCH only means that the whole group is gone already.
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
}

// output returns the captured stdout and stderr.
func (c *child) output() (stdout, stderr *tailBuffer) {
	deadline := time.Now().Add(drainTimeout)
	return c.stdout.finish(deadline), c.stderr.finish(deadline)
}

// exitCodeOf returns the exit code of a process in the shell's convention:
// 128+n for a process killed by signal n.
func exitCodeOf(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// signalName names the signals the runner handles the way users know them.
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}
