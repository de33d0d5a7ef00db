package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
)

// footprint is the resident memory of the processes that hold the records,
// and the live heap (go_gc_heap_live_bytes) of the manager and the facade.
type footprint struct {
	manager, facade, apiserver, etcd int64
	liveManager, liveFacade          int64
	errs                             []string
}

func (b *bench) footprint(ctx context.Context) (footprint, error) {
	var f footprint
	into := map[string]*int64{"manager": &f.manager, "facade": &f.facade, "kube-apiserver": &f.apiserver, "etcd": &f.etcd}
	for _, p := range b.serverProcs() {
		pid, err := p.Find()
		if err == nil {
			*into[p.Name], err = kbench.RSS(pid)
		}
		if err != nil {
			f.errs = append(f.errs, p.Name+": "+err.Error())
		}
	}
	f.liveManager = b.liveHeap(ctx, b.c.managerDeploy)
	f.liveFacade = b.liveHeap(ctx, b.c.facadeDeploy)
	return f, nil
}

// liveHeap is a kfn component's live heap after its last garbage
// collection, from its metrics (0 if unknown).
func (b *bench) liveHeap(ctx context.Context, deployment string) int64 {
	u, err := b.metricsURL(ctx, deployment)
	if err != nil {
		return 0
	}
	m, err := kbench.ScrapeURL(ctx, kbench.NewHTTPClient(1, 10*time.Second), u)
	if err != nil {
		return 0
	}
	return int64(m.Sum("go_gc_heap_live_bytes", nil))
}

// serverProcs are the processes that serve and hold the records.
func (b *bench) serverProcs() []kbench.Proc {
	pidFile := func(name string) func() (int, error) {
		return func() (int, error) { return b.env.PIDFile(name) }
	}
	return []kbench.Proc{
		kbench.KfnProc("manager", "manager"),
		kbench.KfnProc("facade", "apiserver"),
		{Name: "kube-apiserver", Find: pidFile("kube-apiserver")},
		{Name: "etcd", Find: pidFile("etcd")},
	}
}

// footprintAt measures the footprint with n records (idle) and says how
// much each process grew per record since the start of the run, and what
// etcd and the kube-apiserver hold.
func (b *bench) footprintAt(ctx context.Context, n int, before store) (footprint, error) {
	at, err := b.footprint(ctx)
	if err != nil {
		return at, err
	}
	b.r.rawf("B4 %d records, idle, before the list runs: %s", n, at)
	per := func(now, start int64) string {
		if now == 0 || start == 0 {
			return "?"
		}
		return fmt.Sprintf("%.0f B", float64(now-start)/float64(n))
	}
	s := b.start
	b.r.rawf("B4 %d records: RSS growth per record since the start of the run: manager %s, facade %s, kube-apiserver %s, etcd %s; live heap: manager %s, facade %s",
		n, per(at.manager, s.manager), per(at.facade, s.facade), per(at.apiserver, s.apiserver), per(at.etcd, s.etcd),
		per(at.liveManager, s.liveManager), per(at.liveFacade, s.liveFacade))
	if st, err := b.storage(ctx, ""); err == nil {
		b.r.rawf("B4 %d records: etcd db in use %.1f MiB (file %.1f MiB), %.0f B per record more than before seeding; kube-apiserver estimate: %.0f executions, %.1f MiB",
			n, st.etcdInUse/(1<<20), st.etcdTotal/(1<<20), (st.etcdInUse-before.etcdInUse)/float64(n), st.objects, st.estimate/(1<<20))
	}
	return at, nil
}

func (f footprint) String() string {
	s := fmt.Sprintf("RSS manager %s, facade %s, kube-apiserver %s, etcd %s; live heap manager %s, facade %s",
		kbench.MiB(f.manager), kbench.MiB(f.facade), kbench.MiB(f.apiserver), kbench.MiB(f.etcd), kbench.MiB(f.liveManager), kbench.MiB(f.liveFacade))
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
	r.rawf("B4 %d records, after the list runs: %s", n, after)
	row := func(name string, kfn, baseline int64) {
		if kfn == 0 || baseline == 0 {
			r.row(name, "n/a", kbench.MiB(baseline), "n/a", noGoal)
			return
		}
		r.row(name, kbench.MiB(kfn), kbench.MiB(baseline), kbench.Ratio(float64(kfn), float64(baseline)), noGoal)
	}
	row(fmt.Sprintf("B4 manager RSS: %d records vs none (start of run)", n), at.manager, base.manager)
	row(fmt.Sprintf("B4 facade RSS: %d records (idle) vs none", n), at.facade, base.facade)
	for _, clients := range b.c.listClients {
		row(fmt.Sprintf("B4 facade peak RSS during the %d-client list (sampled every 50 ms) vs idle, %d records", clients, n), peaks[clients], at.facade)
	}
	row(fmt.Sprintf("B4 kube-apiserver RSS: %d records vs none", n), at.apiserver, base.apiserver)

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
		r.row("B4 stored bytes per record: etcd value vs API JSON", fmt.Sprintf("%.0f B", etcdAvg), fmt.Sprintf("%.0f B", jsonAvg), kbench.Ratio(etcdAvg, jsonAvg), noGoal)
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
	b.r.row("B4 kfn pod restarts during the run (OOMKilled?)", fmt.Sprintf("%d", total), "—", "—", atMost(float64(total), 0, "0"))
	b.r.rawf("B4 kfn pod restarts during the run (pods at the end; the manager's pod is replaced by the scale-downs): %s", strings.Join(parts, "; "))
}
