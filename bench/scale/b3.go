package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
)

const readsFunction = "reads"

// The list both sides serve: the facade with a filter and limit 25, the
// kube-apiserver the same Executions with limit=25.
var (
	facadeQuery = url.Values{"queries[]": {
		`{"method":"equal","attribute":"status","values":["failed"]}`,
		`{"method":"limit","values":[25]}`,
	}}.Encode()
)

// b3: list N finished records of one function through the facade vs the
// kube-apiserver; B4 (footprint) is measured at 10 000 records (or the
// largest N below it).
func (b *bench) b3(ctx context.Context) error {
	if err := b.managerDown(ctx); err != nil {
		return err
	}
	p, fn, err := b.noopProject(ctx, "bench-reads-", readsFunction)
	if err != nil {
		return err
	}
	storeBefore, err := b.storage(ctx, p.Namespace)
	if err != nil {
		return err
	}
	hc, host, err := b.env.APIServerHTTP(64)
	if err != nil {
		return err
	}
	b.r.rawf("B3 records: one Function, finished Executions (90%% completed/200, 10%% failed/500, ~40 B stdout), written while the manager was scaled to 0")
	if b.c.restartFacade {
		b.r.rawf("B3 the facade is restarted after each seeding (its cache starts from a full list)")
	} else {
		b.r.rawf("B3 the facade is NOT restarted after seeding: its cache followed the seeding by watch events")
	}
	footN := b.c.records[len(b.c.records)-1]
	for _, n := range b.c.records {
		if n == 10000 {
			footN = n
		}
	}
	have := 0
	for i, n := range b.c.records {
		if err := b.seedTo(ctx, p, fn, have, n, i > 0); err != nil {
			return err
		}
		have = n
		foot, err := b.footprintAt(ctx, n, storeBefore)
		if err != nil {
			return err
		}
		peaks := map[int]int64{}
		for _, clients := range b.c.listClients {
			peaks[clients] = b.listRun(ctx, hc, host, p, n, clients)
		}
		if n == footN && b.c.only["b4"] {
			if err := b.b4(ctx, p.Namespace, n, foot, peaks, storeBefore); err != nil {
				return fmt.Errorf("b4: %w", err)
			}
		}
	}
	return nil
}

// seedTo brings the function's records from have to n (the manager at 0;
// down stops it first), then starts the manager and waits until it and the
// facade have caught up.
func (b *bench) seedTo(ctx context.Context, p *kbench.Project, fn *fnv1.Function, have, n int, down bool) error {
	if down {
		if err := b.managerDown(ctx); err != nil {
			return err
		}
	}
	t := time.Now()
	if err := b.seed(ctx, p.Namespace, fn, have, n); err != nil {
		return fmt.Errorf("seeding %d→%d: %w", have, n, err)
	}
	d := time.Since(t)
	b.r.rawf("B3 seeding %d → %d records took %.1f s (%.0f records/s, %d writers, create + status update each)", have, n, d.Seconds(), float64(n-have)/d.Seconds(), b.c.seedWorkers)
	up, drained, err := b.managerUp(ctx)
	if err != nil {
		return err
	}
	b.r.rawf("B3 manager with %d records: ready %.1f s after scale-up, work queues empty after %.1f s", n, up.Seconds(), drained.Seconds())
	if b.c.restartFacade {
		t := time.Now()
		if err := b.env.RolloutRestart(ctx, b.c.kfnNS, b.c.facadeDeploy, 3*time.Minute); err != nil {
			return fmt.Errorf("restarting the facade: %w", err)
		}
		b.r.rawf("B3 facade restarted and ready in %.1f s", time.Since(t).Seconds())
	}
	caught, err := b.facadeCaughtUp(ctx, p, n)
	if err != nil {
		return err
	}
	b.r.rawf("B3 facade list shows all %d records (total %d failed) %.1f s after the manager was ready", n, caught.total, caught.after.Seconds())
	return nil
}

// The facade's list targets, at 8 clients.
const (
	targetClients = 8
	targetRate    = 5000 // req/s
	targetVsAPI   = 20   // × the kube-apiserver's own list
	// targetVsAPIRecords: the ratio's target holds from this many records.
	targetVsAPIRecords = 10000
	targetP99          = 5 // ms
)

// listRun measures the list at n records with clients clients on both
// sides, adds the rows and returns the facade's peak RSS.
func (b *bench) listRun(ctx context.Context, hc *http.Client, host string, p *kbench.Project, n, clients int) int64 {
	before, _ := b.kfnRestarts(ctx)
	profile := n == b.c.records[len(b.c.records)-1]
	facade, peak, facadeCPU := b.listFacade(ctx, p, clients, profile, fmt.Sprintf("facade-%d-records-%d-clients.pprof", n, clients))
	after, _ := b.kfnRestarts(ctx)
	restarted := restartNote(before, after)
	api, apiPeak, apiCPU := b.listAPIServer(ctx, hc, host, p.Namespace, clients)
	name := fmt.Sprintf("B3 list N=%d, %d clients", n, clients)
	kfnRate := fmt.Sprintf("%.0f", facade.Rate())
	if facade.Errors > 0 {
		kfnRate += fmt.Sprintf(" (%d errors)", facade.Errors)
	}
	if restarted != "" {
		kfnRate += " — " + restarted
		b.r.rawf("B3 N=%d %2d clients: %s during the facade run", n, clients, restarted)
	}
	rateGoal, p99Goal := noGoal, noGoal
	if clients == targetClients {
		rateGoal = atLeast(facade.Rate(), targetRate, fmt.Sprintf("≥ %d/s", targetRate))
		// The issue sets the ratio at 10 000 records and more: with fewer
		// the kube-apiserver's own list is cheap too.
		if n >= targetVsAPIRecords {
			rateGoal = rateGoal.and(atLeast(facade.Rate()/api.Rate(), targetVsAPI, fmt.Sprintf("≥ %d×", targetVsAPI)))
		}
		p99Goal = atMost(facade.P(99), targetP99, fmt.Sprintf("≤ %d ms", targetP99))
	}
	b.r.row(name+": req/s", kfnRate, fmt.Sprintf("%.0f", api.Rate()), kbench.Ratio(facade.Rate(), api.Rate()), rateGoal)
	b.r.row(name+": p50", fmt.Sprintf("%.1f ms", facade.P(50)), fmt.Sprintf("%.1f ms", api.P(50)), kbench.Ratio(facade.P(50), api.P(50)), noGoal)
	b.r.row(name+": p99", fmt.Sprintf("%.1f ms", facade.P(99)), fmt.Sprintf("%.1f ms", api.P(99)), kbench.Ratio(facade.P(99), api.P(99)), p99Goal)
	b.r.rawf("B3 N=%d %2d clients facade (status=failed, limit 25): %s; facade peak RSS %s", n, clients, facade, kbench.MiB(peak))
	b.r.rawf("B3 N=%d %2d clients facade run %s", n, clients, facadeCPU)
	b.r.rawf("B3 N=%d %2d clients kube-apiserver (limit=25):         %s; kube-apiserver peak RSS %s", n, clients, api, kbench.MiB(apiPeak))
	b.r.rawf("B3 N=%d %2d clients kube-apiserver run %s", n, clients, apiCPU)
	return peak
}

// managerDown scales the manager to 0 and waits until its pod is gone.
func (b *bench) managerDown(ctx context.Context) error {
	if err := b.env.Scale(ctx, b.c.kfnNS, b.c.managerDeploy, 0, 3*time.Minute); err != nil {
		return fmt.Errorf("scaling the manager to 0: %w", err)
	}
	return nil
}

// managerUp scales the manager to 1 and waits until it is ready, then until
// it leads and its work queues are empty (twice in a row, a second apart).
func (b *bench) managerUp(ctx context.Context) (ready, drained time.Duration, err error) {
	start := time.Now()
	if err := b.env.Scale(ctx, b.c.kfnNS, b.c.managerDeploy, 1, 3*time.Minute); err != nil {
		return 0, 0, fmt.Errorf("scaling the manager to 1: %w", err)
	}
	ready = time.Since(start)
	u, err := b.metricsURL(ctx, b.c.managerDeploy)
	if err != nil {
		return ready, 0, err
	}
	hc := kbench.NewHTTPClient(1, 10*time.Second)
	empty := 0
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		m, err := kbench.ScrapeURL(ctx, hc, u)
		if err != nil {
			return false, nil
		}
		leading := true
		for _, s := range m {
			if s.Name == "leader_election_master_status" && s.Value != 1 {
				leading = false
			}
		}
		if leading && m.Sum("workqueue_depth", nil) == 0 && m.Sum("workqueue_unfinished_work_seconds", nil) == 0 {
			empty++
		} else {
			empty = 0
		}
		return empty >= 2, nil
	})
	if err != nil {
		return ready, 0, fmt.Errorf("manager work queues not empty: %w", err)
	}
	return ready, time.Since(start) - time.Second, nil
}

type caughtUp struct {
	total int
	after time.Duration
}

// facadeCaughtUp waits (bounded) until the facade's list of failed records
// counts all of them (capped at 5000, as the facade's total is).
func (b *bench) facadeCaughtUp(ctx context.Context, p *kbench.Project, n int) (caughtUp, error) {
	want := min(n/10, 5000)
	start := time.Now()
	var last int
	var lastErr string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		code, body, err := b.facade.Do(ctx, http.MethodGet, "/functions/"+readsFunction+"/executions?"+facadeQuery, p, nil, nil)
		if err != nil || code != http.StatusOK {
			lastErr = fmt.Sprintf("%v %d %s", err, code, short(string(body)))
			return false, nil
		}
		var list struct {
			Total      int               `json:"total"`
			Executions []json.RawMessage `json:"executions"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err
		}
		last = list.Total
		return list.Total == want && len(list.Executions) == min(25, want), nil
	})
	if err != nil {
		return caughtUp{}, fmt.Errorf("facade list total %d, want %d (last error: %s): %w", last, want, lastErr, err)
	}
	return caughtUp{total: last, after: time.Since(start)}, nil
}

// warmup is how long each list run is warmed up, not counted.
const warmup = time.Second

// listFacade runs the facade's list; with profile (and --profile-dir and
// --facade-pprof-port), it takes a CPU profile of the facade meanwhile.
func (b *bench) listFacade(ctx context.Context, p *kbench.Project, clients int, profile bool, profileName string) (kbench.Load, int64, string) {
	path := "/functions/" + readsFunction + "/executions?" + facadeQuery
	do := func(ctx context.Context, _, _ int) error {
		code, body, err := b.facade.Do(ctx, http.MethodGet, path, p, nil, nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("code %d %s", code, short(string(body)))
		}
		return err
	}
	return b.measureList(ctx, clients, do, cachedPID("/kfn", "apiserver"), 50*time.Millisecond, profile, profileName)
}

func (b *bench) listAPIServer(ctx context.Context, hc *http.Client, host, ns string, clients int) (kbench.Load, int64, string) {
	u := host + "/apis/" + fnv1.GroupVersion.Group + "/" + fnv1.GroupVersion.Version + "/namespaces/" + ns + "/executions?limit=25"
	do := func(ctx context.Context, _, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("code %d", resp.StatusCode)
		}
		return err
	}
	return b.measureList(ctx, clients, do, func() (int, error) { return b.env.PIDFile("kube-apiserver") }, 100*time.Millisecond, false, "")
}

// measureList warms up, then runs the list load, sampling the server's RSS
// and measuring the CPU of the load generator (this process), the facade,
// the kube-apiserver and etcd, which share the machine.
func (b *bench) measureList(ctx context.Context, clients int, do func(context.Context, int, int) error, server func() (int, error), every time.Duration, profile bool, profileName string) (kbench.Load, int64, string) {
	s := kbench.SampleRSS(server, every)
	kbench.RunLoad(ctx, clients, warmup, 1000000, do)
	stopProfile := func() string { return "" }
	if profile {
		stopProfile = b.profileFacade(ctx, profileName, b.c.listDuration)
	}
	cpu := kbench.StartCPU(b.cpuProcs()...)
	res := kbench.RunLoad(ctx, clients, b.c.listDuration, 1000000, do)
	used := cpu.Stop()
	if saved := stopProfile(); saved != "" {
		used += "; " + saved
	}
	peak, _ := s.Stop()
	return res, peak, used
}

// cpuProcs are the processes whose CPU a list run measures: this one,
// the load generator, and the servers.
func (b *bench) cpuProcs() []kbench.Proc {
	return append([]kbench.Proc{kbench.LoadGenerator}, b.serverProcs()...)
}

// profileFacade fetches a CPU profile of the facade for about d (its
// --pprof-bind-address port on the pod's IP) into --profile-dir; the
// function it returns waits for it and says where it went.
func (b *bench) profileFacade(ctx context.Context, name string, d time.Duration) func() string {
	if b.c.facadePprof == "" || b.c.profileDir == "" {
		return func() string { return "" }
	}
	done := make(chan string, 1)
	go func() {
		done <- b.fetchProfile(ctx, name, max(1, int(d.Seconds())-1))
	}()
	return func() string { return <-done }
}

func (b *bench) fetchProfile(ctx context.Context, name string, seconds int) string {
	ip, err := b.env.ReadyPodIP(ctx, b.c.kfnNS, b.c.facadeDeploy)
	if err != nil {
		return "no profile: " + err.Error()
	}
	u := fmt.Sprintf("http://%s:%s/debug/pprof/profile?seconds=%d", ip, b.c.facadePprof, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "no profile: " + err.Error()
	}
	resp, err := kbench.NewHTTPClient(1, time.Duration(seconds+30)*time.Second).Do(req)
	if err != nil {
		return "no profile: " + err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(b.c.profileDir, name), data, 0o644)
	}
	if err != nil {
		return "no profile: " + err.Error()
	}
	return fmt.Sprintf("facade CPU profile (%d s) in %s", seconds, filepath.Join(b.c.profileDir, name))
}

// cachedPID finds a process once and again only when it is gone.
func cachedPID(argv ...string) func() (int, error) {
	pid := 0
	return func() (int, error) {
		if pid != 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				return pid, nil
			}
		}
		var err error
		pid, err = kbench.FindProcess(argv...)
		return pid, err
	}
}
