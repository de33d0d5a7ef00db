package kbench

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// FindProcess returns the pid of the one process whose command line starts
// with argv (e.g. "/kfn", "manager"); the node is this machine, so the
// containers' processes are visible in /proc.
func FindProcess(argv ...string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.HasPrefix(cmd, want) {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no process %q", strings.Join(argv, " "))
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%d processes %q: %v", len(found), strings.Join(argv, " "), found)
}

// PIDFile reads a pid file of the local cluster (run/<component>.pid).
func (e *Env) PIDFile(component string) (int, error) {
	b, err := os.ReadFile(filepath.Join(e.ClusterDir, "run", component+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// RSS is a process's resident set size (VmRSS) in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// MiB formats bytes as MiB.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Sampler records the peak RSS of a process while it runs.
type Sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
	n    int
}

// SampleRSS samples a process's RSS every interval until Stop.
func SampleRSS(find func() (int, error), interval time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if pid, err := find(); err == nil {
				if rss, err := RSS(pid); err == nil {
					s.mu.Lock()
					s.peak = max(s.peak, rss)
					s.n++
					s.mu.Unlock()
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak RSS and the number of samples.
func (s *Sampler) Stop() (int64, int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n
}

// APIServerHTTP is a plain HTTPS client for the kube-apiserver with the
// kubeconfig's credentials (client certificate), keeping conns connections
// alive, over HTTP/1.1 like the facade's clients.
func (e *Env) APIServerHTTP(conns int) (*http.Client, string, error) {
	tlsCfg, err := rest.TLSConfigFor(e.Config)
	if err != nil {
		return nil, "", err
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg.NextProtos = []string{"http/1.1"}
	var tr http.RoundTripper = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if e.Config.BearerToken != "" {
		tr = &bearer{token: e.Config.BearerToken, next: tr}
	}
	host := strings.TrimRight(e.Config.Host, "/")
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, host, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// CPUTime is a process's user + system CPU time so far (/proc/PID/stat).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (which may hold spaces) in parentheses:
	// state is field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// MachineBusy is the CPU time all cores spent not idle so far (/proc/stat).
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: no cpu line")
	}
	var ticks int64
	for i, s := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Proc names a process and how to find it.
type Proc struct {
	Name string
	Find func() (int, error)
}

// LoadGenerator is this process, which sends a benchmark's requests.
var LoadGenerator = Proc{Name: "load generator", Find: func() (int, error) { return os.Getpid(), nil }}

// KfnProc is the kfn process running component ("manager", "apiserver"),
// found by its command line on this machine (the node).
func KfnProc(name, component string) Proc {
	return Proc{Name: name, Find: func() (int, error) { return FindProcess("/kfn", component) }}
}

// CPUMeter measures the CPU the processes and the whole machine use over
// an interval.
type CPUMeter struct {
	procs []Proc
	start []time.Duration // -1: not found
	busy  time.Duration
	t     time.Time
}

// StartCPU starts measuring.
func StartCPU(procs ...Proc) *CPUMeter {
	m := &CPUMeter{procs: procs, t: time.Now()}
	for _, p := range procs {
		m.start = append(m.start, cpuOf(p))
	}
	m.busy, _ = MachineBusy()
	return m
}

func cpuOf(p Proc) time.Duration {
	pid, err := p.Find()
	if err != nil {
		return -1
	}
	d, err := CPUTime(pid)
	if err != nil {
		return -1
	}
	return d
}

// Stop says how many cores each process and the machine kept busy on
// average since the start, e.g. "load generator 0.52, facade 0.91, … of
// the machine's 1.97 busy (2 cores)".
func (m *CPUMeter) Stop() string {
	wall := time.Since(m.t).Seconds()
	var (
		parts []string
		named time.Duration
	)
	for i, p := range m.procs {
		end := cpuOf(p)
		if end < 0 || m.start[i] < 0 {
			parts = append(parts, p.Name+" ?")
			continue
		}
		named += end - m.start[i]
		parts = append(parts, fmt.Sprintf("%s %.2f", p.Name, (end-m.start[i]).Seconds()/wall))
	}
	busy, err := MachineBusy()
	machine := "?"
	if err == nil {
		machine = fmt.Sprintf("%.2f", (busy-m.busy).Seconds()/wall)
		parts = append(parts, fmt.Sprintf("everything else %.2f", (busy-m.busy-named).Seconds()/wall))
	}
	return fmt.Sprintf("CPU in cores: %s, of the machine's %s busy (%d cores)", strings.Join(parts, ", "), machine, runtime.NumCPU())
}
