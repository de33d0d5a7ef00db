//go:build bench

// Package archive measures issue 15's read targets on the local cluster
// (`make bench` runs it after bench/scale): one function with -records
// archived records in a real PostgreSQL, against a baseline function with
// -baseline records in the same run, read through the facade in the
// cluster by -clients clients: a list with a filter and limit(25), and a
// get by ID; the manager's and the facade's memory after each. It prints
// the numbers and their ratios; timings are reported, never asserted.
//
//	KUBECONFIG=.cache/cluster/kubeconfig HELM=bin/helm-v3.22.0 \
//	  go test -tags bench -count=1 -timeout 60m -run TestArchiveReads -v ./bench/archive/ -args -records=100000
package archive

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

var (
	records  = flag.Int("records", 1_000_000, "archived records of the measured function")
	baseline = flag.Int("baseline", 1000, "archived records of the baseline function")
	clients  = flag.Int("clients", 8, "concurrent clients of each read run")
	duration = flag.Duration("duration", 10*time.Second, "length of each read run")
)

const (
	kfnNamespace = "kfn-system"
	secretName   = "kfn-archive-bench"
	// The targets at 8 clients.
	targetListP99 = 10 // ms
	targetGetP99  = 5  // ms
)

// The list B3 measures on objects: the failed tenth, one page.
var listQuery = url.Values{"queries[]": {
	`{"method":"equal","attribute":"status","values":["failed"]}`,
	`{"method":"limit","values":[25]}`,
}}.Encode()

// function is one measured function: its records' IDs are base+i.
type function struct {
	name string
	n    int
	base int64
}

func (f function) id(i int) string { return fmt.Sprintf("%013x%07x", f.base, i) }

// measured is one function's reads and the kfn processes' memory after.
type measured struct {
	list, get       kbench.Load
	manager, facade int64
}

func TestArchiveReads(t *testing.T) {
	if *baseline < 25 || *records < *baseline {
		t.Fatalf("-baseline must be at least 25 and -records at least -baseline: %d, %d", *baseline, *records)
	}
	ctx := context.Background()
	env, err := kbench.NewEnv(100, 200)
	if err != nil {
		t.Fatal(err)
	}
	pg, dsn := pgtest.StartForCluster(t, bridge())
	store, err := archive.Open(ctx, dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run := fmt.Sprintf("archive-%d", time.Now().Unix())
	p, err := env.NewProject(ctx, "bench-archive-", run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.DeleteNamespaces(context.Background(), run, 2*time.Minute) })

	small := function{name: "small", n: *baseline, base: time.Now().UnixMicro()}
	big := function{name: "big", n: *records, base: small.base + 1}
	for _, f := range []function{small, big} {
		createFunction(t, env, p.Namespace, f.name)
		start := time.Now()
		load(t, store, p.Namespace, f)
		fmt.Printf("loaded %d records into %s in %.1f s\n", f.n, f.name, time.Since(start).Seconds())
	}
	analyze(t, pg) // as autovacuum soon would after a bulk load
	enableArchive(t, env, dsn)

	facade, err := env.DiscoverFacade(ctx, kfnNamespace, "kfn-apiserver", 2*(*clients))
	if err != nil {
		t.Fatal(err)
	}
	defer facade.Close()
	fmt.Printf("facade reached through %s; load average %s\n", facade.Via, kbench.LoadAverage())
	ready(ctx, t, facade, p, small)
	base := measure(ctx, t, facade, p, small)
	at := measure(ctx, t, facade, p, big)
	report(base, at, small.n, big.n)
}

// load writes the function's records as the operator would, in batches of
// 1000 from 4 writers: every 10th failed.
func load(t *testing.T, store *archive.Store, ns string, f function) {
	t.Helper()
	const batch = 1000
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range next {
				execs := make([]*fnv1.Execution, 0, batch)
				for i := from; i < min(from+batch, f.n); i++ {
					execs = append(execs, record(ns, f, i))
				}
				if err := store.Put(context.Background(), execs...); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for from := 0; from < f.n; from += batch {
		next <- from
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

func record(ns string, f function, i int) *fnv1.Execution {
	at := metav1.NewTime(time.UnixMicro(f.base).Add(time.Duration(i-f.n) * time.Second))
	status, code := fnv1.PhaseCompleted, int32(200)
	if i%10 == 0 {
		status, code = fnv1.PhaseFailed, 500
	}
	return &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: f.id(i), CreationTimestamp: at,
			UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", f.base&0xffffffff, i))},
		Spec:   fnv1.ExecutionSpec{FunctionName: f.name, Trigger: fnv1.TriggerHTTP, Method: "POST", Path: "/"},
		Status: fnv1.ExecutionStatus{Status: status, StatusCode: code, CompletionTime: &at, Duration: 0.05, Stdout: fmt.Sprintf("record %d done", i)},
	}
}

func analyze(t *testing.T, pg *pgtest.Server) {
	t.Helper()
	conn, err := pg.Connect(context.Background(), "kfn")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "VACUUM ANALYZE executions"); err != nil {
		t.Fatal(err)
	}
}

// ready waits until the facade answers a list of f: it may read the new
// project's API keys only once the operator has granted it access.
func ready(ctx context.Context, t *testing.T, facade *kbench.Facade, p *kbench.Project, f function) {
	t.Helper()
	start := time.Now()
	var (
		code, first     int
		body, firstBody []byte
		err             error
	)
	for time.Since(start) < 2*time.Minute {
		code, body, err = facade.Do(ctx, http.MethodGet, "/functions/"+f.name+"/executions?"+listQuery, p, nil, nil)
		if err == nil && code == http.StatusOK {
			fmt.Printf("the facade answered the list after %.1f s (before: %d %.100s)\n", time.Since(start).Seconds(), first, firstBody)
			return
		}
		if first == 0 {
			first, firstBody = code, body
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the facade did not answer a list within 2 minutes: %d %.300s %v", code, body, err)
}

// measure runs the list, then the get, on f, and reads the memory after.
func measure(ctx context.Context, t *testing.T, facade *kbench.Facade, p *kbench.Project, f function) measured {
	t.Helper()
	expect := func(path string, want int) func(context.Context, int, int) error {
		return func(ctx context.Context, _, _ int) error {
			target := path
			if strings.HasSuffix(path, "/") { // a get of a random record
				target += f.id(rand.IntN(f.n))
			}
			code, body, err := facade.Do(ctx, http.MethodGet, target, p, nil, nil)
			if err == nil && code != want {
				err = fmt.Errorf("%d: %.200s", code, body)
			}
			return err
		}
	}
	var m measured
	cpu := kbench.StartCPU(cpuProcs()...)
	m.list = kbench.RunLoad(ctx, *clients, *duration, 1_000_000, expect("/functions/"+f.name+"/executions?"+listQuery, http.StatusOK))
	listCPU := cpu.Stop()
	cpu = kbench.StartCPU(cpuProcs()...)
	m.get = kbench.RunLoad(ctx, *clients, *duration, 1_000_000, expect("/functions/"+f.name+"/executions/", http.StatusOK))
	getCPU := cpu.Stop()
	m.manager, m.facade = rss(t, "manager"), rss(t, "apiserver")
	fmt.Printf("%s (%d records): list %s\n  %s\n%s (%d records): get %s\n  %s\n", f.name, f.n, m.list, listCPU, f.name, f.n, m.get, getCPU)
	if m.list.Errors+m.get.Errors > 0 { // a 500 says nothing more: its cause is in the facade's log
		out, _ := exec.Command("kubectl", "-n", kfnNamespace, "logs", "deploy/kfn-apiserver", "--tail=10").CombinedOutput()
		fmt.Printf("the facade's last log lines:\n%s\n", out)
	}
	return m
}

// cpuProcs are the processes a read run keeps busy; PostgreSQL's (a
// process per connection) are most of the meter's "everything else".
func cpuProcs() []kbench.Proc {
	return []kbench.Proc{kbench.LoadGenerator, kbench.KfnProc("facade", "apiserver"), kbench.KfnProc("manager", "manager")}
}

// rss reads a kfn process's resident memory (the node is this machine),
// waiting up to a minute for a replaced pod's process to be gone.
func rss(t *testing.T, component string) int64 {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		var pid int
		if pid, err = kbench.FindProcess("/kfn", component); err == nil {
			var b int64
			if b, err = kbench.RSS(pid); err == nil {
				return b
			}
		}
	}
	t.Fatal(err)
	return 0
}

func report(base, at measured, n0, n int) {
	fmt.Printf("\n| %d clients | %d records | %d records | ratio | target |\n|---|---|---|---|---|\n", *clients, n0, n)
	row := func(what string, a, b float64, unit, target string) {
		fmt.Printf("| %s | %.2f %s | %.2f %s | %s | %s |\n", what, a, unit, b, unit, kbench.Ratio(b, a), target)
	}
	row("list equal(status,failed)+limit(25) p50", base.list.P(50), at.list.P(50), "ms", "")
	row("list p99", base.list.P(99), at.list.P(99), "ms", fmt.Sprintf("≤ %d ms", targetListP99))
	row("list rate", base.list.Rate(), at.list.Rate(), "req/s", "")
	row("get p50", base.get.P(50), at.get.P(50), "ms", "")
	row("get p99", base.get.P(99), at.get.P(99), "ms", fmt.Sprintf("≤ %d ms", targetGetP99))
	row("get rate", base.get.Rate(), at.get.Rate(), "req/s", "")
	row("manager RSS", mib(base.manager), mib(at.manager), "MiB", "the same")
	row("facade RSS", mib(base.facade), mib(at.facade), "MiB", "the same")
	fmt.Printf("errors: list %d/%d, get %d/%d\n", base.list.Errors, at.list.Errors, base.get.Errors, at.get.Errors)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func bridge() string {
	if b := os.Getenv("KFN_BRIDGE"); b != "" {
		return b
	}
	return "kfn0"
}

func createFunction(t *testing.T, env *kbench.Env, ns, name string) {
	t.Helper()
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       fnv1.FunctionSpec{Image: "kfn.dev/busybox:test", Command: []string{"true"}, Timeout: 30},
	}
	if err := env.Client.Create(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// enableArchive upgrades the release to read the archive at dsn (and
// helmSets), and
// restores its values when the test ends.
func enableArchive(t *testing.T, env *kbench.Env, dsn string, helmSets ...string) {
	t.Helper()
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(helm(t, "get", "values", "kfn", "--output", "yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: kfnNamespace}, StringData: map[string]string{"dsn": dsn}}
	if err := env.Client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), secret) })
	t.Cleanup(func() {
		helm(t, "upgrade", "kfn", "../../charts/kfn", "--reset-values", "--values", values, "--wait", "--timeout", "180s")
	})
	helm(t, append([]string{"upgrade", "kfn", "../../charts/kfn", "--reuse-values", "--set", "archive.enabled=true",
		"--set", "archive.secretName=" + secretName, "--wait", "--timeout", "180s"}, helmSets...)...)
	for _, d := range []string{"kfn-manager", "kfn-apiserver"} {
		if err := env.WaitDeployment(context.Background(), kfnNamespace, d, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM must name the helm binary")
	}
	out, err := exec.Command(bin, append(args, "--namespace", kfnNamespace)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
