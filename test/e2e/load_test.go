//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// A burst the node cannot run at once: 1000 asynchronous executions of a
// no-op function, created by 16 parallel clients, with a Function limit and
// the namespace cap (hack/e2e.sh sets it) that both bind. All finish
// completed; sampled, the namespace never runs more pods than the cap nor
// the narrow function more than its limit; listing the executions answers
// in under 2 s throughout; and each function's Jobs are made in the
// executions' creation order (within a second: timestamps have no finer
// grain).
func TestBurstIsHeldWithinTheCaps(t *testing.T) {
	g := NewWithT(t)
	nsCap := managerIntFlag(t, "max-running-per-namespace")
	g.Expect(nsCap).To(BeNumerically(">", 0), "the namespace cap must bind in this test")
	ns := newNamespace(t)
	// The first 60 are the narrow function's, so its limit binds while the
	// wide one fills the rest of the namespace's slots.
	const total, narrowLimit, narrowFirst = 1000, 5, 60
	noop := func(limit int32) fnv1.FunctionSpec {
		return fnv1.FunctionSpec{Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 60,
			MaxConcurrency: limit, Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": "true\n"}}}
	}
	createFunction(t, ns, "narrow", noop(narrowLimit))
	createFunction(t, ns, "wide", noop(total))
	functionOf := func(i int) string {
		if i < narrowFirst {
			return "narrow"
		}
		return "wide"
	}

	c := loadClient(t)
	jobs := watchJobs(t, c, ns)
	s := startLoadSampler(t, c, ns)
	start := time.Now()
	created := createBurst(t, c, ns, total, 16, functionOf)
	createdIn := time.Since(start)

	var finished time.Duration
	lastLog := start
	g.Eventually(func(g Gomega) {
		execs := &fnv1.ExecutionList{}
		g.Expect(c.List(bg, execs, client.InNamespace(ns))).To(Succeed())
		done := 0
		for _, e := range execs.Items {
			g.Expect(e.Status.Status).NotTo(Equal(fnv1.PhaseFailed), "execution %s: %s", e.Name, e.Status.Message)
			if e.Status.Status == fnv1.PhaseCompleted {
				done++
			}
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			st := s.snapshot()
			t.Logf("after %s: %d completed; so far at most %d pods running, %d of narrow; slowest list %s",
				time.Since(start).Round(time.Second), done, st.maxPods, st.maxNarrow, st.slowestList.Round(time.Millisecond))
		}
		g.Expect(done).To(Equal(total))
		finished = time.Since(start)
	}, 15*time.Minute, 3*time.Second).Should(Succeed(), "a bound that only catches a stuck burst (run with go test -timeout over 15m)")
	st := s.stop()
	t.Logf("%d executions created in %s, all completed after %s (%.1f/s); at most %d pods running (cap %d), %d of narrow (limit %d); slowest list of executions %s",
		total, createdIn.Round(time.Millisecond), finished.Round(time.Second), float64(total)/finished.Seconds(),
		st.maxPods, nsCap, st.maxNarrow, narrowLimit, st.slowestList.Round(time.Millisecond))

	g.Expect(st.maxPods).To(BeNumerically("<=", nsCap), "pods running at once in the namespace")
	g.Expect(st.maxNarrow).To(BeNumerically("<=", narrowLimit), "pods of the narrow function at once")
	g.Expect(st.heldByNamespace && st.heldByFunction).To(BeTrue(), "both limits held executions: namespace %v, function %v", st.heldByNamespace, st.heldByFunction)
	g.Expect(st.slowestList).To(BeNumerically("<", 2*time.Second), "listing the executions during the burst")
	expectCreationOrder(t, created, jobs.made())
}

// loadClient is a client without the default client-side rate limit (5
// requests a second), which would make a burst a trickle.
func loadClient(t *testing.T) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(loadConfig(t), client.Options{Scheme: kube.NewScheme()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return c
}

func loadConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	cfg.QPS, cfg.Burst = 500, 1000
	return cfg
}

// managerIntFlag reads an integer flag of the installed manager.
func managerIntFlag(t *testing.T, name string) int {
	t.Helper()
	deploy := &appsv1.Deployment{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: "kfn-system", Name: "kfn-manager"}, deploy)).To(Succeed())
	for _, arg := range deploy.Spec.Template.Spec.Containers[0].Args {
		var v int
		if _, err := fmt.Sscanf(arg, "--"+name+"=%d", &v); err == nil {
			return v
		}
	}
	t.Fatalf("the manager has no --%s", name)
	return 0
}

// burstExecution is one created Execution of a burst.
type burstExecution struct {
	name, function string
	created        time.Time
}

// createBurst creates n asynchronous Executions named load-NNNN from
// workers parallel clients.
func createBurst(t *testing.T, c client.Client, ns string, n, workers int, functionOf func(int) string) []burstExecution {
	t.Helper()
	out := make([]burstExecution, n)
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := &fnv1.Execution{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("load-%04d", i), Namespace: ns},
					Spec:       fnv1.ExecutionSpec{FunctionName: functionOf(i), Async: true},
				}
				if err := c.Create(bg, e); err != nil {
					errs <- err
					continue
				}
				out[i] = burstExecution{e.Name, e.Spec.FunctionName, e.CreationTimestamp.Time}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating the burst: %v", err)
	}
	return out
}

// expectCreationOrder checks, function by function, that no Execution's
// Job was made more than a second before the Job of one created in an
// earlier second.
func expectCreationOrder(t *testing.T, execs []burstExecution, jobMade map[string]time.Time) {
	t.Helper()
	byFunction := map[string][]burstExecution{}
	for _, e := range execs {
		byFunction[e.function] = append(byFunction[e.function], e)
	}
	for fn, list := range byFunction {
		slices.SortFunc(list, func(a, b burstExecution) int { return a.created.Compare(b.created) })
		var latestBefore, latestHere time.Time // Jobs of executions created in earlier seconds, in this one
		for i, e := range list {
			made, ok := jobMade[e.name]
			if !ok {
				t.Fatalf("no Job was seen for %s", e.name)
			}
			if i > 0 && e.created.After(list[i-1].created) {
				latestBefore = later(latestBefore, latestHere)
			}
			latestHere = later(latestHere, made)
			if made.Add(time.Second).Before(latestBefore) {
				t.Errorf("function %s: %s (created %s) got its Job at %s, after a newer execution's Job at %s",
					fn, e.name, e.created.Format(time.TimeOnly), made.Format(time.TimeOnly), latestBefore.Format(time.TimeOnly))
			}
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// jobWatch records when each Execution's Job was made, from a watch on
// the namespace's Jobs (they are deleted once their record is written).
type jobWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (w *jobWatch) made() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen)
}

// watchJobs watches the namespace's Jobs until the test ends, re-opening
// the watch if the API server closes it.
func watchJobs(t *testing.T, wc client.WithWatch, ns string) *jobWatch {
	t.Helper()
	jw := &jobWatch{seen: map[string]time.Time{}}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			w, err := wc.Watch(bg, &batchv1.JobList{}, client.InNamespace(ns))
			if err != nil {
				time.Sleep(time.Second)
				continue
			}
			if !jw.record(w, done) {
				return
			}
		}
	}()
	return jw
}

// record notes the Jobs a watch reports; false once the test is over.
func (w *jobWatch) record(wi watch.Interface, done <-chan struct{}) bool {
	defer wi.Stop()
	for {
		select {
		case <-done:
			return false
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return true
			}
			job, isJob := ev.Object.(*batchv1.Job)
			if !isJob {
				continue
			}
			w.mu.Lock()
			if _, known := w.seen[job.Labels[kube.LabelExecution]]; !known {
				w.seen[job.Labels[kube.LabelExecution]] = job.CreationTimestamp.Time
			}
			w.mu.Unlock()
		}
	}
}

// loadStats is what the sampler saw.
type loadStats struct {
	maxPods, maxNarrow              int
	slowestList                     time.Duration
	heldByNamespace, heldByFunction bool
}

type loadSampler struct {
	c     client.Client
	rest  rest.Interface
	mu    sync.Mutex
	stats loadStats
	done  chan struct{}
	wg    sync.WaitGroup
}

// startLoadSampler counts the namespace's running pods, times a list of its
// Executions as `kubectl get executions` makes it, and reads which limits
// hold them, twice a second.
func startLoadSampler(t *testing.T, c client.Client, ns string) *loadSampler {
	t.Helper()
	clientset, err := kubernetes.NewForConfig(loadConfig(t))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	s := &loadSampler{c: c, rest: clientset.CoreV1().RESTClient(), done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			s.sample(ns)
			select {
			case <-s.done:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *loadSampler) sample(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pods := &corev1.PodList{}
	if err := s.c.List(bg, pods, client.InNamespace(ns)); err == nil {
		all, narrow := 0, 0
		for _, p := range pods.Items {
			if functionAlive(&p) {
				all++
				if p.Labels[kube.LabelFunction] == "narrow" {
					narrow++
				}
			}
		}
		s.stats.maxPods, s.stats.maxNarrow = max(s.stats.maxPods, all), max(s.stats.maxNarrow, narrow)
	}
	begin := time.Now()
	err := s.kubectlGet(ns)
	s.stats.slowestList = max(s.stats.slowestList, time.Since(begin))
	if err != nil {
		s.stats.slowestList = max(s.stats.slowestList, time.Hour) // an error is no answer
	}
	execs := &fnv1.ExecutionList{}
	if err := s.c.List(bg, execs, client.InNamespace(ns)); err != nil {
		return
	}
	for _, e := range execs.Items {
		if e.Status.Reason == fnv1.ReasonWaitingForSlot {
			s.stats.heldByNamespace = s.stats.heldByNamespace || strings.Contains(e.Status.Message, "namespace "+ns)
			s.stats.heldByFunction = s.stats.heldByFunction || strings.Contains(e.Status.Message, "function narrow")
		}
	}
}

// functionAlive reports whether a pod's function is starting or running:
// the kubelet keeps the phase of a pod whose containers all ended at
// Running until it has torn the pod down, which takes seconds on a busy
// node, long after the operator has recorded the result and given the slot
// to the next execution.
func functionAlive(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodPending && p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "function" && cs.State.Terminated != nil {
			return false
		}
	}
	return true
}

// kubectlGet lists the namespace's Executions as `kubectl get executions`
// does: server-side printed rows (a Table), in pages of 500.
func (s *loadSampler) kubectlGet(ns string) error {
	next := ""
	for {
		raw, err := s.rest.Get().AbsPath("/apis", fnv1.GroupVersion.Group, fnv1.GroupVersion.Version, "namespaces", ns, "executions").
			Param("limit", "500").Param("continue", next).
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json").Do(bg).Raw()
		if err != nil {
			return err
		}
		var page metav1.Table
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		if next = page.Continue; next == "" {
			return nil
		}
	}
}

func (s *loadSampler) snapshot() loadStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *loadSampler) stop() loadStats {
	close(s.done)
	s.wg.Wait()
	return s.snapshot()
}
