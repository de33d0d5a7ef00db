package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	env, c := b.env, b.env.Client
	if err := b.managerDown(ctx); err != nil {
		return err
	}
	p, err := env.NewProject(ctx, "bench-reads-", b.run)
	if err != nil {
		return err
	}
	fn := noopFunction(p.Namespace, readsFunction)
	if err := c.Create(ctx, fn); err != nil {
		return err
	}
	storeBefore, err := b.storage(ctx, p.Namespace)
	if err != nil {
		return err
	}
	footN := b.c.records[len(b.c.records)-1]
	for _, n := range b.c.records {
		if n == 10000 {
			footN = n
		}
	}
	hc, host, err := env.APIServerHTTP(64)
	if err != nil {
		return err
	}
	r := b.r
	r.rawf("B3 records: one Function, finished Executions (90%% completed/200, 10%% failed/500, ~40 B stdout), written while the manager was scaled to 0")
	if b.c.restartFacade {
		r.rawf("B3 the facade is restarted after each seeding (its cache starts from a full list)")
	} else {
		r.rawf("B3 the facade is NOT restarted after seeding: its cache followed the seeding by watch events")
	}
	have := 0
	for i, n := range b.c.records {
		if i > 0 {
			if err := b.managerDown(ctx); err != nil {
				return err
			}
		}
		t := time.Now()
		if err := b.seed(ctx, p.Namespace, fn, have, n); err != nil {
			return fmt.Errorf("seeding %d→%d: %w", have, n, err)
		}
		d := time.Since(t)
		r.rawf("B3 seeding %d → %d records took %.1f s (%.0f records/s, %d writers, create + status update each)", have, n, d.Seconds(), float64(n-have)/d.Seconds(), b.c.seedWorkers)
		have = n
		up, drained, err := b.managerUp(ctx)
		if err != nil {
			return err
		}
		r.rawf("B3 manager with %d records: ready %.1f s after scale-up, work queues empty after %.1f s", n, up.Seconds(), drained.Seconds())
		if b.c.restartFacade {
			t := time.Now()
			if err := env.RolloutRestart(ctx, b.c.kfnNS, b.c.facadeDeploy, 3*time.Minute); err != nil {
				return fmt.Errorf("restarting the facade: %w", err)
			}
			r.rawf("B3 facade restarted and ready in %.1f s", time.Since(t).Seconds())
		}
		caught, err := b.facadeCaughtUp(ctx, p, n)
		if err != nil {
			return err
		}
		r.rawf("B3 facade list shows all %d records (total %d failed) %.1f s after the manager was ready", n, caught.total, caught.after.Seconds())

		var foot footprint
		if n == footN && b.c.only["b4"] {
			if foot, err = b.footprint(ctx); err != nil {
				return err
			}
		}
		peaks := map[int]int64{}
		for _, clients := range b.c.listClients {
			before, _ := b.kfnRestarts(ctx)
			facade, peak := b.listFacade(ctx, p, clients)
			after, _ := b.kfnRestarts(ctx)
			restarted := restartNote(before, after)
			api, apiPeak := b.listAPIServer(ctx, hc, host, p.Namespace, clients)
			peaks[clients] = peak
			name := fmt.Sprintf("B3 list N=%d, %d clients", n, clients)
			kfnRate := fmt.Sprintf("%.0f", facade.Rate())
			if facade.Errors > 0 {
				kfnRate += fmt.Sprintf(" (%d errors)", facade.Errors)
			}
			if restarted != "" {
				kfnRate += " — " + restarted
				r.rawf("B3 N=%d %2d clients: %s during the facade run", n, clients, restarted)
			}
			r.row(name+": req/s", kfnRate, fmt.Sprintf("%.0f", api.Rate()), kbench.Ratio(facade.Rate(), api.Rate()), "—")
			r.row(name+": p50", fmt.Sprintf("%.1f ms", facade.P(50)), fmt.Sprintf("%.1f ms", api.P(50)), kbench.Ratio(facade.P(50), api.P(50)), "—")
			r.row(name+": p99", fmt.Sprintf("%.1f ms", facade.P(99)), fmt.Sprintf("%.1f ms", api.P(99)), kbench.Ratio(facade.P(99), api.P(99)), "—")
			r.rawf("B3 N=%d %2d clients facade (status=failed, limit 25): %s; facade peak RSS %s", n, clients, facade, kbench.MiB(peak))
			r.rawf("B3 N=%d %2d clients kube-apiserver (limit=25):         %s; kube-apiserver peak RSS %s", n, clients, api, kbench.MiB(apiPeak))
		}
		if n == footN && b.c.only["b4"] {
			if err := b.b4(ctx, p.Namespace, n, foot, peaks, storeBefore); err != nil {
				return fmt.Errorf("b4: %w", err)
			}
		}
	}
	return nil
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

// seed writes records [from, to) of the function: create, then the status
// of a finished run. The manager is at 0, so nothing else writes them.
func (b *bench) seed(ctx context.Context, ns string, fn *fnv1.Function, from, to int) error {
	base := time.Now().UnixMicro()
	owner := metav1.OwnerReference{APIVersion: fnv1.GroupVersion.String(), Kind: "Function", Name: fn.Name, UID: fn.UID}
	retry := func(ctx context.Context, f func() error) error {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = f(); err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) {
				return err
			}
			select {
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	return parallel(ctx, b.c.seedWorkers, to-from, func(ctx context.Context, k int) error {
		i := from + k
		name := fmt.Sprintf("%013x%07x", base, i) // like the facade's IDs: 20 hex digits, ordered
		e := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: fnv1.ExecutionSpec{FunctionName: fn.Name, Trigger: fnv1.TriggerHTTP, Async: true,
				Method: "POST", Path: "/", Body: fmt.Sprintf(`{"n":%d}`, i)},
		}
		err := retry(ctx, func() error { return b.env.Client.Create(ctx, e) })
		if apierrors.IsAlreadyExists(err) { // a retried create that had gone through
			err = b.env.Client.Get(ctx, client.ObjectKeyFromObject(e), e)
		}
		if err != nil {
			return err
		}
		e.Status = finishedStatus(name, i, time.Now())
		return retry(ctx, func() error { return b.env.Client.Status().Update(ctx, e) })
	})
}

// finishedStatus is the record of a finished run as the operator writes it:
// every 10th failed (500), the others completed (200).
func finishedStatus(name string, i int, now time.Time) fnv1.ExecutionStatus {
	dur := 0.05 + float64(i%97)/1000
	start := metav1.NewTime(now.Add(-time.Duration(dur * float64(time.Second))).Truncate(time.Second))
	end := metav1.NewTime(now.Truncate(time.Second))
	s := fnv1.ExecutionStatus{
		ObservedGeneration: 1,
		Status:             fnv1.PhaseCompleted,
		StatusCode:         200,
		Response:           fmt.Sprintf(`{"ok":true,"n":%d}`, i),
		ResponseHeaders:    map[string]string{"content-type": "application/json"},
		Stdout:             fmt.Sprintf("run %d: hello from the bench function\n", i),
		Duration:           dur,
		StartTime:          &start,
		CompletionTime:     &end,
		JobName:            name,
		PodName:            name + "-x7k2p",
		ExitCode:           ptr.To[int32](0),
		Reason:             fnv1.ReasonCompleted,
		Message:            "the function completed",
	}
	cond := metav1.Condition{Type: fnv1.ExecutionSucceeded, Status: metav1.ConditionTrue, ObservedGeneration: 1,
		LastTransitionTime: end, Reason: fnv1.ReasonCompleted, Message: "the function completed"}
	if i%10 == 9 {
		s.Status, s.StatusCode, s.ExitCode = fnv1.PhaseFailed, 500, ptr.To[int32](1)
		s.Response = ""
		s.Stderr = fmt.Sprintf("run %d: error: bench failure\n", i)
		s.Reason, s.Message = fnv1.ReasonFunctionFailed, "the function exited with code 1"
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, fnv1.ReasonFunctionFailed, s.Message
	}
	s.Conditions = []metav1.Condition{cond}
	return s
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

func (b *bench) listFacade(ctx context.Context, p *kbench.Project, clients int) (kbench.Load, int64) {
	path := "/functions/" + readsFunction + "/executions?" + facadeQuery
	do := func(ctx context.Context, _, _ int) error {
		code, body, err := b.facade.Do(ctx, http.MethodGet, path, p, nil, nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("code %d %s", code, short(string(body)))
		}
		return err
	}
	s := kbench.SampleRSS(cachedPID("/kfn", "apiserver"), 50*time.Millisecond)
	kbench.RunLoad(ctx, clients, warmup, 1000000, do)
	res := kbench.RunLoad(ctx, clients, b.c.listDuration, 1000000, do)
	peak, _ := s.Stop()
	return res, peak
}

func (b *bench) listAPIServer(ctx context.Context, hc *http.Client, host, ns string, clients int) (kbench.Load, int64) {
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
	s := kbench.SampleRSS(func() (int, error) { return b.env.PIDFile("kube-apiserver") }, 100*time.Millisecond)
	kbench.RunLoad(ctx, clients, warmup, 1000000, do)
	res := kbench.RunLoad(ctx, clients, b.c.listDuration, 1000000, do)
	peak, _ := s.Stop()
	return res, peak
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

// footprint is the resident memory of the processes that hold the records.
type footprint struct {
	manager, facade, apiserver, etcd int64
	errs                             []string
}

func (b *bench) footprint(ctx context.Context) (footprint, error) {
	var f footprint
	get := func(name string, find func() (int, error), into *int64) {
		pid, err := find()
		if err == nil {
			*into, err = kbench.RSS(pid)
		}
		if err != nil {
			f.errs = append(f.errs, name+": "+err.Error())
		}
	}
	get("manager", func() (int, error) { return kbench.FindProcess("/kfn", "manager") }, &f.manager)
	get("facade", func() (int, error) { return kbench.FindProcess("/kfn", "apiserver") }, &f.facade)
	get("kube-apiserver", func() (int, error) { return b.env.PIDFile("kube-apiserver") }, &f.apiserver)
	get("etcd", func() (int, error) { return b.env.PIDFile("etcd") }, &f.etcd)
	return f, nil
}

func (f footprint) String() string {
	s := fmt.Sprintf("RSS manager %s, facade %s, kube-apiserver %s, etcd %s", kbench.MiB(f.manager), kbench.MiB(f.facade), kbench.MiB(f.apiserver), kbench.MiB(f.etcd))
	if len(f.errs) > 0 {
		s += " (" + strings.Join(f.errs, "; ") + ")"
	}
	return s
}

// store is what the storage holds for the Executions.
type store struct {
	etcdInUse, etcdTotal float64 // etcd_mvcc_db_total_size_in_(use_in_)bytes
	estimate, objects    float64 // apiserver_resource_size_estimate_bytes / _objects for executions
}

func (b *bench) storage(ctx context.Context, _ string) (store, error) {
	var s store
	hc := kbench.NewHTTPClient(1, 30*time.Second)
	em, err := kbench.ScrapeURL(ctx, hc, b.c.etcdURL+"/metrics")
	if err != nil {
		return s, fmt.Errorf("etcd metrics: %w", err)
	}
	s.etcdInUse = em.Sum("etcd_mvcc_db_total_size_in_use_in_bytes", nil)
	s.etcdTotal = em.Sum("etcd_mvcc_db_total_size_in_bytes", nil)
	am, err := b.env.ScrapeAPIServer(ctx)
	if err != nil {
		return s, err
	}
	sel := map[string]string{"group": fnv1.GroupVersion.Group, "resource": "executions"}
	s.estimate = am.Sum("apiserver_resource_size_estimate_bytes", sel)
	s.objects = am.Sum("apiserver_resource_objects", sel)
	return s, nil
}

// b4: the footprint with n records, against the start of the run.
func (b *bench) b4(ctx context.Context, ns string, n int, at footprint, peaks map[int]int64, before store) error {
	r := b.r
	base := b.start
	after, _ := b.footprint(ctx)
	r.rawf("B4 start of run (no records): %s", base)
	r.rawf("B4 %d records, idle, before the list runs: %s", n, at)
	r.rawf("B4 %d records, after the list runs: %s", n, after)
	row := func(name string, kfn, baseline int64) {
		if kfn == 0 || baseline == 0 {
			r.row(name, "n/a", kbench.MiB(baseline), "n/a", "—")
			return
		}
		r.row(name, kbench.MiB(kfn), kbench.MiB(baseline), kbench.Ratio(float64(kfn), float64(baseline)), "—")
	}
	row(fmt.Sprintf("B4 manager RSS: %d records vs none (start of run)", n), at.manager, base.manager)
	row(fmt.Sprintf("B4 facade RSS: %d records (idle) vs none", n), at.facade, base.facade)
	for _, clients := range b.c.listClients {
		row(fmt.Sprintf("B4 facade peak RSS during the %d-client list (sampled every 50 ms) vs idle, %d records", clients, n), peaks[clients], at.facade)
	}
	row(fmt.Sprintf("B4 kube-apiserver RSS: %d records vs none", n), at.apiserver, base.apiserver)
	if at.manager > 0 && base.manager > 0 {
		r.rawf("B4 RSS growth per record: manager %.0f B, facade %.0f B, kube-apiserver %.0f B, etcd %.0f B",
			float64(at.manager-base.manager)/float64(n), float64(at.facade-base.facade)/float64(n),
			float64(at.apiserver-base.apiserver)/float64(n), float64(at.etcd-base.etcd)/float64(n))
	}

	// Stored bytes: etcd's values for the records (sampled, read-only range
	// on etcd's loopback gRPC gateway), the kube-apiserver's estimate and
	// etcd's db growth, and the objects' JSON as the API serves them.
	jsonAvg, jsonNoMF, count, err := b.jsonSize(ctx, ns)
	if err != nil {
		return err
	}
	etcdAvg, etcdN, etcdErr := b.etcdValueSize(ctx, ns, 500)
	after2, err := b.storage(ctx, ns)
	if err != nil {
		return err
	}
	if etcdErr == nil && etcdN > 0 {
		r.row("B4 stored bytes per record: etcd value vs API JSON", fmt.Sprintf("%.0f B", etcdAvg), fmt.Sprintf("%.0f B", jsonAvg), kbench.Ratio(etcdAvg, jsonAvg), "—")
		r.rawf("B4 etcd values of %d sampled records: %.0f B on average", etcdN, etcdAvg)
	} else {
		r.rawf("B4 etcd values not read: %v", etcdErr)
	}
	r.rawf("B4 JSON of the %d records as the API serves them: %.0f B on average, %.0f B without managedFields", count, jsonAvg, jsonNoMF)
	r.rawf("B4 etcd db in use grew %.0f B per record (%.1f → %.1f MiB; includes the superseded revision of each record until the next compaction), db file %.1f → %.1f MiB",
		(after2.etcdInUse-before.etcdInUse)/float64(n), before.etcdInUse/(1<<20), after2.etcdInUse/(1<<20), before.etcdTotal/(1<<20), after2.etcdTotal/(1<<20))
	if after2.objects > 0 {
		r.rawf("B4 kube-apiserver estimate for executions: %.0f objects, %.1f MiB (%.0f B each; refreshed periodically)", after2.objects, after2.estimate/(1<<20), after2.estimate/after2.objects)
	}
	return nil
}

// jsonSize lists the namespace's Executions (pages of 500) and averages
// their JSON size, with and without managedFields.
func (b *bench) jsonSize(ctx context.Context, ns string) (avg, noMF float64, n int, err error) {
	var total, totalNoMF int
	cont := ""
	for page := 0; page < 1000; page++ {
		var list fnv1.ExecutionList
		if err := b.env.Client.List(ctx, &list, client.InNamespace(ns), client.Limit(500), client.Continue(cont)); err != nil {
			return 0, 0, 0, err
		}
		for i := range list.Items {
			e := &list.Items[i]
			e.APIVersion, e.Kind = fnv1.GroupVersion.String(), "Execution"
			j, _ := json.Marshal(e)
			total += len(j)
			e.ManagedFields = nil
			j, _ = json.Marshal(e)
			totalNoMF += len(j)
			n++
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	if n == 0 {
		return 0, 0, 0, fmt.Errorf("no executions in %s", ns)
	}
	return float64(total) / float64(n), float64(totalNoMF) / float64(n), n, nil
}

// etcdValueSize reads up to limit stored Executions of the namespace from
// etcd's gRPC gateway (a read-only range on loopback) and averages their
// value size.
func (b *bench) etcdValueSize(ctx context.Context, ns string, limit int) (float64, int, error) {
	prefix := "/registry/" + fnv1.GroupVersion.Group + "/executions/" + ns + "/"
	end := []byte(prefix)
	end[len(end)-1]++
	body, _ := json.Marshal(map[string]any{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end),
		"limit":     limit,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.c.etcdURL+"/v3/kv/range", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := kbench.NewHTTPClient(1, 60*time.Second).Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("etcd range: %s", resp.Status)
	}
	var out struct {
		KVs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, 0, err
	}
	total := 0
	for _, kv := range out.KVs {
		v, err := base64.StdEncoding.DecodeString(kv.Value)
		if err != nil {
			return 0, 0, err
		}
		total += len(v)
	}
	if len(out.KVs) == 0 {
		return 0, 0, fmt.Errorf("no keys under %s", prefix)
	}
	return float64(total) / float64(len(out.KVs)), len(out.KVs), nil
}

// kfnRestarts reads the restart counts of the kfn pods.
func (b *bench) kfnRestarts(ctx context.Context) (kbench.PodRestarts, error) {
	return b.env.Restarts(ctx, b.c.kfnNS, labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": "kfn"}))
}

// restartNote says which kfn pods restarted between two snapshots, and why.
func restartNote(before, after kbench.PodRestarts) string {
	var parts []string
	for name, a := range after {
		if d := a.Restarts - before[name].Restarts; d > 0 {
			parts = append(parts, fmt.Sprintf("%s restarted %d× (%s)", name, d, strings.Join(a.Reasons, ", ")))
		}
	}
	return strings.Join(parts, "; ")
}

func (b *bench) restartRows(before, after kbench.PodRestarts) {
	var parts []string
	total := int32(0)
	for name, a := range after {
		d := a.Restarts - before[name].Restarts
		total += d
		s := fmt.Sprintf("%s: %d", name, d)
		if d > 0 && len(a.Reasons) > 0 {
			s += " (" + strings.Join(a.Reasons, ", ") + ")"
		}
		parts = append(parts, s)
	}
	b.r.row("B4 kfn pod restarts during the run (OOMKilled?)", fmt.Sprintf("%d", total), "—", "—", "0")
	b.r.rawf("B4 kfn pod restarts during the run (pods at the end; the manager's pod is replaced by the scale-downs): %s", strings.Join(parts, "; "))
}
