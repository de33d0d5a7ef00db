package runner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The user's code runs as the same user as the runner. These defences keep
// it from touching the runner, and from outliving it.

const (
	// killTimeout bounds the hunt for the code's processes.
	killTimeout = 2 * time.Second
	// killRetry is how long killed processes get to die before the next look.
	killRetry = 10 * time.Millisecond
)

// protect makes the runner non-dumpable, so that the user's code cannot
// open /proc/<runner>/fd/* (the container log, where the result goes),
// /proc/<runner>/mem or ptrace the runner; and a child subreaper, so that
// every process the code starts, even one that leaves the process group or
// loses its parent, stays a descendant of the runner that it can kill.
func protect() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making the runner non-dumpable: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("making the runner a subreaper: %w", err)
	}
	return nil
}

// killDescendants kills every process below the runner and reaps them, so
// that nothing the code started can write after the runner has reported
// (e.g. the termination message, which the code can open too). It returns
// how many could not be killed within killTimeout. Only the user's process,
// already waited for, is the runner's own child: the rest came from it.
func killDescendants() (survivors int) {
	self := os.Getpid()
	if self == 1 {
		// The runner is init of the container's PID namespace. kill(-1)
		// signals every other process of the namespace at once, with the
		// kernel's task list locked, so no fork can race it. Anywhere else
		// it would reach every process of the user, outside the container
		// or in other containers sharing the namespace.
		_ = unix.Kill(-1, unix.SIGKILL)
	}
	deadline := time.Now().Add(killTimeout)
	for {
		live, zombies := descendants(self)
		for _, p := range zombies {
			// Orphans re-parented to the subreaper are its to reap.
			var status unix.WaitStatus
			_, _ = unix.Wait4(p.pid, &status, unix.WNOHANG, nil)
		}
		if len(live) == 0 || time.Now().After(deadline) {
			return len(live)
		}
		for _, p := range live {
			p.kill()
		}
		time.Sleep(killRetry)
	}
}

// proc is a process as /proc/<pid>/stat shows it.
type proc struct {
	pid, ppid int
	zombie    bool
	// start (clock ticks after boot) tells the process from a later one
	// that got its pid.
	start uint64
}

// descendants walks /proc for the processes below root: the live ones, and
// the zombies that are root's own children.
func descendants(root int) (live, zombies []proc) {
	children := map[int][]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	queue := children[root]
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p.pid]...)
		switch {
		case !p.zombie:
			live = append(live, p)
		case p.ppid == root:
			zombies = append(zombies, p)
		}
	}
	return live, zombies
}

// readProc reads the state, parent and start time of a process; false if
// it is gone.
func readProc(pid int) (proc, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	// "pid (comm) state ppid ... starttime ...": comm may hold anything,
	// so the fields are counted from its closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if err != nil || i < 0 {
		return proc{}, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 20 {
		return proc{}, false
	}
	ppid, err1 := strconv.Atoi(string(fields[1]))
	start, err2 := strconv.ParseUint(string(fields[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return proc{}, false
	}
	state := fields[0][0]
	return proc{pid: pid, ppid: ppid, zombie: state == 'Z' || state == 'X', start: start}, true
}

// kill sends SIGKILL to p, unless its pid now names another process. A
// pidfd pins the process while its start time is checked.
func (p proc) kill() {
	fd, pidfdErr := unix.PidfdOpen(p.pid, 0)
	if pidfdErr == nil {
		defer unix.Close(fd)
	}
	if now, ok := readProc(p.pid); !ok || now.start != p.start {
		return
	}
	if pidfdErr == nil {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		return
	}
	// No pidfds (Linux before 5.3): the pid could be reused between the
	// check and the kill, a window of microseconds.
	_ = unix.Kill(p.pid, unix.SIGKILL)
}
