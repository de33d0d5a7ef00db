package kbench

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Sorted returns durations as sorted seconds.
func Sorted(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	sort.Float64s(out)
	return out
}

// Load is the outcome of a bounded load loop.
type Load struct {
	OK, Errors int
	Elapsed    time.Duration
	Latencies  []float64 // seconds of the successful requests, sorted
	FirstError string
}

// Rate is successful requests per second.
func (l Load) Rate() float64 { return float64(l.OK) / l.Elapsed.Seconds() }

// P is a latency percentile in milliseconds.
func (l Load) P(p float64) float64 { return Percentile(l.Latencies, p) * 1000 }

func (l Load) String() string {
	s := fmt.Sprintf("%d ok in %.1f s = %.0f/s, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms", l.OK, l.Elapsed.Seconds(), l.Rate(), l.P(50), l.P(90), l.P(99))
	if l.Errors > 0 {
		first := l.FirstError
		if i := strings.LastIndex(first, ": "); len(first) > 160 && i > 0 {
			first = "…" + first[i:] // the cause, not the long URL
		}
		s += fmt.Sprintf(", %d errors (first: %s)", l.Errors, first)
	}
	return s
}

// RunLoad runs do from clients goroutines until dur passes or maxRequests
// were started, whichever comes first: every loop is bounded in time and count.
func RunLoad(ctx context.Context, clients int, dur time.Duration, maxRequests int, do func(ctx context.Context, worker, i int) error) Load {
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second) // a stuck request ends too
	defer cancel()
	var (
		started  atomic.Int64
		mu       sync.Mutex
		res      Load
		wg       sync.WaitGroup
		deadline = time.Now().Add(dur)
	)
	begin := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []float64
			ok, errs, first := 0, 0, ""
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(started.Add(1))
				if i > maxRequests {
					break
				}
				t := time.Now()
				if err := do(ctx, w, i); err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					// A failing server answers fast: do not spin on it.
					select {
					case <-time.After(20 * time.Millisecond):
					case <-ctx.Done():
					}
					continue
				}
				ok++
				lat = append(lat, time.Since(t).Seconds())
			}
			mu.Lock()
			res.OK += ok
			res.Errors += errs
			res.Latencies = append(res.Latencies, lat...)
			if res.FirstError == "" {
				res.FirstError = first
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	sort.Float64s(res.Latencies)
	return res
}

// Machine describes this machine: nproc, free -g and the kernel.
func Machine() string {
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	mem := run("free", "-g")
	for _, line := range strings.Split(mem, "\n") {
		if strings.HasPrefix(line, "Mem:") {
			f := strings.Fields(line)
			if len(f) >= 7 {
				mem = fmt.Sprintf("Mem total %sG, used %sG, free %sG, available %sG (free -g)", f[1], f[2], f[3], f[6])
			}
		}
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("nproc %s; %s; kernel %s; host %s", run("nproc"), mem, run("uname", "-r"), host)
}

// Ratio formats a/b, or "n/a".
func Ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a/b, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// LoadAverage is /proc/loadavg's 1, 5 and 15 minute load averages.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
