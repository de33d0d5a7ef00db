package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/bench/internal/latency"
)

// noopFunction is the no-op Function the benchmarks run; its history
// limits are high so that pruning neither deletes the records a benchmark
// counts nor adds deletes to the writes it counts, and its concurrency
// limit high so that admission does not bind (the scale issue's B2: caps
// set high enough not to bind; bench/run.sh lifts the namespace cap).
func noopFunction(ns, name string) *fnv1.Function {
	return &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: fnv1.FunctionSpec{
			Image: latency.Image, Command: []string{"true"}, Timeout: 30, MaxConcurrency: 1000,
			SuccessfulExecutionsHistoryLimit: ptr.To[int32](1000000),
			FailedExecutionsHistoryLimit:     ptr.To[int32](1000000),
		},
	}
}

// noopProject is a new bench project holding the no-op function fn.
func (b *bench) noopProject(ctx context.Context, prefix, fn string) (*kbench.Project, *fnv1.Function, error) {
	p, err := b.env.NewProject(ctx, prefix, b.run)
	if err != nil {
		return nil, nil, err
	}
	f := noopFunction(p.Namespace, fn)
	return p, f, b.env.Client.Create(ctx, f)
}

// b2: a burst of async executions vs a burst of bare Jobs, the API writes
// of each, then the facade's async-create rate.
func (b *bench) b2(ctx context.Context) error {
	p, err := b.env.NewProject(ctx, "bench-burst-", b.run)
	if err != nil {
		return err
	}
	fn := burstFunction(p.Namespace)
	if err := b.env.Client.Create(ctx, fn); err != nil {
		return err
	}
	if err := latency.WaitReady(ctx, b.env.Client, fn); err != nil {
		return err
	}
	n := b.c.burst
	scrape, err := b.scraper(ctx)
	if err != nil {
		return err
	}
	// Bare Jobs: the same image as the function's, without the runner.
	s0, err := scrape(ctx)
	if err != nil {
		return err
	}
	var bare, kfn burst
	if bare.done, bare.took, err = b.burstJobs(ctx, p.Namespace, n); err != nil {
		return fmt.Errorf("bare jobs: %w", err)
	}
	// Their cleanup (by this client, as a user of bare Jobs would) belongs
	// to their writes, as the operator's own cleanup belongs to kfn's.
	if err := b.env.Client.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(p.Namespace), client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return err
	}
	if err := b.waitNoJobsNoPods(ctx, p.Namespace, 4*time.Minute); err != nil {
		return fmt.Errorf("bare jobs cleanup: %w", err)
	}
	s1, err := scrape(ctx)
	if err != nil {
		return err
	}
	// kfn: async creates through the facade.
	if kfn.done, kfn.took, kfn.failed, err = b.burstExecutions(ctx, p, n); err != nil {
		return fmt.Errorf("executions: %w", err)
	}
	if err := b.waitNoJobsNoPods(ctx, p.Namespace, 4*time.Minute); err != nil {
		return fmt.Errorf("kfn cleanup of jobs and pods: %w", err)
	}
	s2, err := scrape(ctx)
	if err != nil {
		return err
	}
	b.burstRows(ctx, p.Namespace, n, bare, kfn)
	b.apiWriteRows(n, s0, s1, s2)
	b.operatorWriteRows(n, s0, s1, s2)

	// The create-rate test makes executions that must not run: the manager
	// goes to 0 (B3 seeds with it at 0 too, and scales it back), once the
	// facade may serve the project (the operator grants it that).
	rateProject, err := b.createRateProject(ctx)
	if err != nil {
		return err
	}
	if err := b.managerDown(ctx); err != nil {
		return err
	}
	if err := b.createRate(ctx, rateProject); err != nil {
		return err
	}
	if !b.c.only["b3"] {
		_, _, err := b.managerUp(ctx)
		return err
	}
	return nil
}

// burst is how a burst went: each run's time to finish (sorted seconds),
// the time until the last, and how many failed.
type burst struct {
	done   []float64
	took   time.Duration
	failed int
}

// scrapes is one scrape of the kube-apiserver's, the manager's and the
// facade's metrics, and when it was taken.
type scrapes struct {
	api, mgr, fac kbench.Metrics
	at            time.Time
}

// scraper returns a function that scrapes the three.
func (b *bench) scraper(ctx context.Context) (func(context.Context) (scrapes, error), error) {
	mgrURL, err := b.metricsURL(ctx, b.c.managerDeploy)
	if err != nil {
		return nil, err
	}
	facadeURL, err := b.metricsURL(ctx, b.c.facadeDeploy)
	if err != nil {
		return nil, err
	}
	hc := kbench.NewHTTPClient(2, 30*time.Second)
	return func(ctx context.Context) (s scrapes, err error) {
		if s.api, err = b.env.ScrapeAPIServer(ctx); err != nil {
			return
		}
		if s.mgr, err = kbench.ScrapeURL(ctx, hc, mgrURL); err != nil {
			return
		}
		s.fac, err = kbench.ScrapeURL(ctx, hc, facadeURL)
		s.at = time.Now()
		return
	}, nil
}

func (b *bench) burstRows(ctx context.Context, ns string, n int, bare, kfn burst) {
	bareRate, execRate := float64(n)/bare.took.Seconds(), float64(n)/kfn.took.Seconds()
	kfnCell := fmt.Sprintf("%.2f/s (%.1f s)", execRate, kfn.took.Seconds())
	if kfn.failed > 0 {
		kfnCell += fmt.Sprintf(", %d failed", kfn.failed)
		reasons, err := b.failureReasons(ctx, ns)
		if err == nil {
			b.r.rawf("B2 burst: failed executions by reason: %s", reasons)
		}
	}
	b.r.row(fmt.Sprintf("B2 burst of %d: runs/s until all done", n), kfnCell,
		fmt.Sprintf("%.2f/s (%.1f s)", bareRate, bare.took.Seconds()), kbench.Ratio(execRate, bareRate), noGoal)
	b.r.rawf("B2 burst: %d bare Jobs created by %d clients → all Complete in %.1f s (per Job p50 %.1f s, p90 %.1f s)",
		n, b.c.burstClients, bare.took.Seconds(), kbench.Percentile(bare.done, 50), kbench.Percentile(bare.done, 90))
	b.r.rawf("B2 burst: %d async executions POSTed by %d clients → all finished in %.1f s (per execution p50 %.1f s, p90 %.1f s); %d failed",
		n, b.c.burstClients, kfn.took.Seconds(), kbench.Percentile(kfn.done, 50), kbench.Percentile(kfn.done, 90), kfn.failed)
}

// apiWriteRows: every client's writes on the kube-apiserver per run,
// bare Jobs (s0→s1) against kfn (s1→s2), by verb and resource.
func (b *bench) apiWriteRows(n int, s0, s1, s2 scrapes) {
	writes := func(m kbench.Metrics) map[string]float64 {
		out := map[string]float64{}
		for k, v := range m.By("apiserver_request_total", "verb", "group", "resource", "subresource") {
			if kbench.WriteVerbs[strings.Split(k, "|")[0]] {
				out[k] = v
			}
		}
		return out
	}
	bareW, kfnW := kbench.Delta(writes(s0.api), writes(s1.api)), kbench.Delta(writes(s1.api), writes(s2.api))
	b.r.row("B2 kube-apiserver writes per run (all clients, incl. cleanup)", fmt.Sprintf("%.1f", sum(kfnW)/float64(n)),
		fmt.Sprintf("%.1f", sum(bareW)/float64(n)), kbench.Ratio(sum(kfnW), sum(bareW)), noGoal)
	b.r.rawf("B2 kube-apiserver writes per run by verb group/resource/subresource (kfn | bare Job); from apiserver_request_total, all clients, burst through cleanup:")
	keys := map[string]float64{}
	for k := range bareW {
		keys[k] = 0
	}
	for k := range kfnW {
		keys[k] = 0
	}
	for _, k := range kbench.SortedKeys(keys) {
		f := strings.Split(k, "|") // verb, group, resource, subresource
		name := f[0] + " " + strings.TrimPrefix(f[1]+"/"+f[2], "/")
		if f[3] != "" {
			name += "/" + f[3]
		}
		if fmt.Sprintf("%.2f%.2f", kfnW[k]/float64(n), bareW[k]/float64(n)) == "0.000.00" {
			continue // another client's stray write
		}
		b.r.rawf("B2   %-52s %6.2f | %6.2f", name, kfnW[k]/float64(n), bareW[k]/float64(n))
	}
}

func sum(m map[string]float64) (s float64) {
	for _, v := range m {
		s += v
	}
	return
}

// maxOperatorWrites is the most API writes the operator should make per
// execution.
const maxOperatorWrites = 6

// operatorWriteRows: the manager's own writes per execution (its client
// metrics), less its idle writes (leader-election lease renewals etc.),
// estimated from the bare-Job phase (s0→s1), when the manager was idle.
func (b *bench) operatorWriteRows(n int, s0, s1, s2 scrapes) {
	mw := func(m kbench.Metrics) map[string]float64 { return m.By("rest_client_requests_total", "method") }
	idle, busy := kbench.Delta(mw(s0.mgr), mw(s1.mgr)), kbench.Delta(mw(s1.mgr), mw(s2.mgr))
	idleTime := s1.at.Sub(s0.at).Seconds()
	scale := s2.at.Sub(s1.at).Seconds() / idleTime
	var mgrWrites, mgrIdle float64
	var parts []string
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		mgrWrites += busy[method]
		mgrIdle += idle[method] * scale
		parts = append(parts, fmt.Sprintf("%s %.2f", method, busy[method]/float64(n)))
	}
	perExec := (mgrWrites - mgrIdle) / float64(n)
	b.r.row("B2 operator API writes per execution (its client metrics)", fmt.Sprintf("%.2f", perExec), "—", "—",
		atMost(perExec, maxOperatorWrites, fmt.Sprintf("≤ %d", maxOperatorWrites)))
	b.r.rawf("B2 manager rest_client_requests_total during the kfn burst, per execution: %s; GET %.2f; idle (lease renewals etc.) %.0f writes in %.0f s of the bare phase, scaled to the kfn phase: %.0f, subtracted: %.2f writes/execution",
		strings.Join(parts, ", "), busy["GET"]/float64(n), sum(idle)-idle["GET"], idleTime, mgrIdle, perExec)
	refused := kbench.Delta(s1.mgr.By("rest_client_requests_total", "method", "code"), s2.mgr.By("rest_client_requests_total", "method", "code"))
	var refusedParts []string
	for _, k := range kbench.SortedKeys(refused) {
		method, code, _ := strings.Cut(k, "|")
		if method != "GET" && !strings.HasPrefix(code, "2") {
			refusedParts = append(refusedParts, fmt.Sprintf("%s %s %.2f", method, code, refused[k]/float64(n)))
		}
	}
	b.r.rawf("B2 manager writes refused by the kube-apiserver during the kfn burst, per execution: %s", orNone(refusedParts))
	fw := kbench.Delta(mw(s1.fac), mw(s2.fac))
	b.r.rawf("B2 facade rest_client_requests_total during the kfn burst, per execution: POST %.2f, PUT %.2f, PATCH %.2f, DELETE %.2f, GET %.2f",
		fw["POST"]/float64(n), fw["PUT"]/float64(n), fw["PATCH"]/float64(n), fw["DELETE"]/float64(n), fw["GET"]/float64(n))
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// failureReasons counts the failed executions of a namespace by reason.
func (b *bench) failureReasons(ctx context.Context, ns string) (string, error) {
	var list fnv1.ExecutionList
	if err := b.env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return "", err
	}
	count := map[string]float64{}
	example := map[string]string{}
	for _, e := range list.Items {
		if e.Status.Status == fnv1.PhaseFailed {
			count[e.Status.Reason]++
			example[e.Status.Reason] = e.Status.Message
		}
	}
	var parts []string
	for _, r := range kbench.SortedKeys(count) {
		parts = append(parts, fmt.Sprintf("%s %.0f (e.g. %q)", r, count[r], example[r]))
	}
	return strings.Join(parts, "; "), nil
}

func (b *bench) metricsURL(ctx context.Context, deployment string) (string, error) {
	ip, err := b.env.ReadyPodIP(ctx, b.c.kfnNS, deployment)
	if err != nil {
		return "", err
	}
	return "http://" + ip + ":8080/metrics", nil
}

// burstJobs creates n bare Jobs from burstClients goroutines and waits for
// all to finish; it returns each one's time to finish (sorted) and the time
// until the last.
func (b *bench) burstJobs(ctx context.Context, ns string, n int) ([]float64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	defer b.profileBurst(ctx, "bare Jobs", ns, n, start)()
	w := b.startWatch(ctx, &batchv1.JobList{}, ns, n, start, func(o client.Object) (bool, bool) {
		j := o.(*batchv1.Job)
		return latency.JobFinished(j), true
	})
	err := parallel(ctx, b.c.burstClients, n, func(ctx context.Context, i int) error {
		return b.env.Client.Create(ctx, latency.NodeJobFor(ns, fmt.Sprintf("burst-%04d", i)))
	})
	if err != nil {
		return nil, 0, err
	}
	done, _, err := w.wait()
	if err != nil {
		return nil, 0, err
	}
	return kbench.Sorted(done), maxDur(done), nil
}

// burstExecutions creates n async executions through the facade from
// burstClients goroutines and waits until all are finished.
func (b *bench) burstExecutions(ctx context.Context, p *kbench.Project, n int) ([]float64, time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	defer b.profileBurst(ctx, "kfn executions", p.Namespace, n, start)()
	w := b.startWatch(ctx, &fnv1.ExecutionList{}, p.Namespace, n, start, func(o client.Object) (bool, bool) {
		e := o.(*fnv1.Execution)
		return e.Status.Status.IsFinished(), e.Status.Status == fnv1.PhaseCompleted
	})
	var created atomic.Int64
	err := parallel(ctx, b.c.burstClients, n, func(ctx context.Context, i int) error {
		code, body, err := b.facade.Do(ctx, http.MethodPost, "/functions/"+burstFunctionName+"/executions", p, []byte(asyncBody), nil)
		if err != nil {
			return err
		}
		if code != http.StatusAccepted {
			return fmt.Errorf("POST: %d %s", code, short(string(body)))
		}
		created.Add(1)
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	b.r.rawf("B2 burst: all %d async creates answered 202 after %.1f s", created.Load(), time.Since(start).Seconds())
	done, failed, err := w.wait()
	if err != nil {
		return nil, 0, 0, err
	}
	return kbench.Sorted(done), maxDur(done), failed, nil
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// parallel runs f(i) for i in [0, n) from clients goroutines; the first
// error stops it.
func parallel(ctx context.Context, clients, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idx := make(chan int)
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := f(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// waitNoJobsNoPods waits (bounded) until a namespace holds no Job and no pod.
func (b *bench) waitNoJobsNoPods(ctx context.Context, ns string, waitFor time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, time.Second, waitFor, true, func(ctx context.Context) (bool, error) {
		var jobs batchv1.JobList
		if err := b.env.Client.List(ctx, &jobs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		var pods corev1.PodList
		if err := b.env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return len(jobs.Items) == 0 && len(pods.Items) == 0, nil
	})
}

// createRate measures the facade's async-create rate with the manager
// scaled to 0 (the executions are created, never run, then deleted with
// their namespace), against creating Executions directly with the
// kube-apiserver, and what a disabled function answers.
func (b *bench) createRate(ctx context.Context, p *kbench.Project) error {
	if err := b.disabledRate(ctx, p); err != nil {
		return err
	}
	facade := kbench.RunLoad(ctx, b.c.rateClients, b.c.rateDuration, 100000, b.postAsync(p, "noop", http.StatusAccepted))
	direct := kbench.RunLoad(ctx, b.c.rateClients, b.c.rateDuration, 100000, func(ctx context.Context, _, i int) error {
		return b.env.Client.Create(ctx, &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("direct-%06d", i), Namespace: p.Namespace},
			Spec:       fnv1.ExecutionSpec{FunctionName: "noop", Trigger: fnv1.TriggerHTTP, Async: true, Method: "POST", Path: "/"},
		})
	})
	b.r.row(fmt.Sprintf("B2 async creates/s (%d clients, %s; manager at 0)", b.c.rateClients, b.c.rateDuration),
		fmt.Sprintf("%.0f/s", facade.Rate()), fmt.Sprintf("%.0f/s (Executions created directly)", direct.Rate()), kbench.Ratio(facade.Rate(), direct.Rate()),
		atLeast(facade.Rate(), 300, "≥ 300/s"))
	b.r.rawf("B2 create rate: facade async POST (202 once cached): %s", facade)
	b.r.rawf("B2 create rate: kube-apiserver create of the same Executions (client-go, HTTP/2): %s", direct)

	t := time.Now()
	if err := b.env.DeleteNamespace(ctx, p.Namespace, 4*time.Minute); err != nil {
		return fmt.Errorf("deleting %s: %w", p.Namespace, err)
	}
	b.r.rawf("B2 create rate: namespace with %d executions deleted in %.0f s", facade.OK+direct.OK, time.Since(t).Seconds())
	return nil
}

// createRateProject is a project with the no-op function "noop" and a
// disabled one, "off", once the facade knows them and may read the
// project's API keys.
func (b *bench) createRateProject(ctx context.Context) (*kbench.Project, error) {
	p, _, err := b.noopProject(ctx, "bench-create-", "noop")
	if err != nil {
		return nil, err
	}
	off := noopFunction(p.Namespace, "off")
	off.Spec.Enabled = ptr.To(false)
	if err := b.env.Client.Create(ctx, off); err != nil {
		return nil, err
	}
	// The facade reads Functions from its cache: wait until it knows both.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		code, _, err := b.facade.Do(ctx, http.MethodGet, "/functions/noop/executions", p, nil, nil)
		return err == nil && code == http.StatusOK, nil
	}); err != nil {
		return nil, fmt.Errorf("facade does not see the function: %w", err)
	}
	return p, nil
}

// disabledRate: what a disabled function answers, and how fast.
func (b *bench) disabledRate(ctx context.Context, p *kbench.Project) error {
	code, body, err := b.facade.Do(ctx, http.MethodPost, "/functions/off/executions", p, []byte(asyncBody), nil)
	if err != nil {
		return err
	}
	var apiErr struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &apiErr)
	b.r.rawf("B2 create rate: a disabled function answers %d %s (no Execution is made), so it cannot measure creates", code, apiErr.Type)
	rejects := kbench.RunLoad(ctx, b.c.rateClients, 2*time.Second, 100000, b.postAsync(p, "off", http.StatusNotFound))
	b.r.rawf("B2 create rate: disabled-function POSTs (%d clients, 2 s): %s", b.c.rateClients, rejects)
	return nil
}

const asyncBody = `{"body":"","async":true}`

// postAsync is a load step: one async create of fn through the facade,
// answered with want.
func (b *bench) postAsync(p *kbench.Project, fn string, want int) func(context.Context, int, int) error {
	return func(ctx context.Context, _, _ int) error {
		code, body, err := b.facade.Do(ctx, http.MethodPost, "/functions/"+fn+"/executions", p, []byte(asyncBody), nil)
		if err == nil && code != want {
			err = fmt.Errorf("code %d %s", code, short(string(body)))
		}
		return err
	}
}
