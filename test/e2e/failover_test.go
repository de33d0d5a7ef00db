//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// The failover tests crash kfn's own processes and the control plane while
// executions run, and check that every execution still ends with its real
// result, exactly once. They share the release's operator and facade, so
// none of them runs in parallel with another test.

// managerLease is the operator's leader-election Lease (manager.go).
const managerLease = "kfn-manager.functions.kfn.dev"

// takeoverMargin is how much longer than the lease a new leader may take:
// the retry period (5 s) and a generous margin for this shared, loaded
// node. Only "stuck" fails; the time is logged.
const takeoverMargin = 30 * time.Second

// echoScript answers "<execution id>:<request body>" after a pause that
// keeps the burst in flight while the fault happens.
const echoScript = `sleep 2
printf '%s:%s' "$APPWRITE_FUNCTION_EXECUTION_ID" "$(cat "$KFN_REQUEST_FILE")" > "$KFN_RESPONSE_FILE"
echo ran`

// TestFailoverOperatorKilledMidBurst SIGKILLs the manager's process (the
// pod stays and the kubelet restarts its container in place: a crash, not a
// graceful rollout, so the lease is not handed over) while 100 executions
// run. The restarted manager waits out its own old lease, then finishes
// every execution with its real result, each run by exactly one pod.
func TestFailoverOperatorKilledMidBurst(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	runs := watchRuns(t, ns)
	shellFunction(t, ns, "echo", echoScript, 60)
	names := burst(t, ns, "echo", "run", 100)
	waitInFlight(t, ns, 10)

	manager := managerPods(t)
	g.Expect(manager).To(HaveLen(1))
	holder := leaseHolder(t)
	killedAt := time.Now()
	t.Logf("at the kill: %v", phaseCounts(t, ns))
	signalContainer(t, &manager[0], "manager", syscall.SIGKILL)

	restarted := waitRestarted(t, &manager[0], "manager")
	newHolder := waitNewLeader(t, holder, killedAt)
	done := waitAllFinished(t, ns, names, 3*eventually)
	checkRanOnce(t, ns, echoAnswers(names), runs)
	t.Logf("operator SIGKILLed with 100 executions in flight: container ready again %.1fs, lease (%v) taken by the new process %.1fs, all 100 finished %.1fs after the kill",
		restarted.Sub(killedAt).Seconds(), holder.lease, newHolder.at.Sub(killedAt).Seconds(), done.Sub(killedAt).Seconds())
}

// TestFailoverLeaderElection runs two managers: only the Lease holder
// reconciles. The leader is frozen (SIGSTOP: it neither renews nor releases
// its lease, as a crashed or cut-off process) mid-burst, so the follower
// must take over once the lease expires; then the frozen process is
// SIGKILLed, restarts and stays a follower.
func TestFailoverLeaderElection(t *testing.T) {
	g := NewWithT(t)
	scaleOperator(t, 2)
	t.Cleanup(func() { scaleOperator(t, 1) })
	leader, follower := electedPair(t)

	ns := newNamespace(t)
	runs := watchRuns(t, ns)
	shellFunction(t, ns, "echo", echoScript, 60)
	names := burst(t, ns, "echo", "run", 30)
	waitInFlight(t, ns, 5)
	g.Expect(reconcileTotal(t, follower)).To(BeZero(), "the follower %s reconciles nothing", follower.Name)
	g.Expect(reconcileTotal(t, leader)).To(BeNumerically(">", 0), "the leader %s reconciles", leader.Name)

	holder := leaseHolder(t)
	frozenAt := time.Now()
	t.Logf("leader %s frozen: %v", leader.Name, phaseCounts(t, ns))
	pid := signalContainer(t, leader, "manager", syscall.SIGSTOP)
	newHolder := waitNewLeader(t, holder, frozenAt)
	g.Expect(newHolder.name).To(HavePrefix(follower.Name+"_"), "the follower took over")
	g.Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())

	done := waitAllFinished(t, ns, names, 3*eventually)
	checkRanOnce(t, ns, echoAnswers(names), runs)
	waitRestarted(t, leader, "manager")
	g.Expect(reconcileTotal(t, leader)).To(BeZero(), "the old leader, restarted, is a follower")
	g.Expect(leaseHolder(t).name).To(Equal(newHolder.name))
	t.Logf("leader frozen with 30 executions in flight: follower %s took the lease %.1fs later (lease %v), all finished %.1fs after the freeze",
		follower.Name, newHolder.at.Sub(frozenAt).Seconds(), holder.lease, done.Sub(frozenAt).Seconds())
}

// TestFailoverAPIServerRestart restarts etcd and kube-apiserver
// (hack/cluster-restart.sh) while 50 executions run: the operator and the
// facade reconnect on their own (no restart of either), every execution
// finishes once, and the facade's cache has caught up.
func TestFailoverAPIServerRestart(t *testing.T) {
	g := NewWithT(t)
	clusterDir := os.Getenv("CLUSTER_DIR")
	g.Expect(clusterDir).NotTo(BeEmpty(), "CLUSTER_DIR names the local cluster: run through hack/e2e.sh")
	p := newProject(t)
	runs := watchRuns(t, p.namespace)
	shellFunction(t, p.namespace, "echo", echoScript, 60)
	before := kfnPods(t)
	names := burst(t, p.namespace, "echo", "run", 50)
	waitInFlight(t, p.namespace, 10)

	t.Logf("at the restart: %v", phaseCounts(t, p.namespace))
	ctx, cancel := context.WithTimeout(bg, 3*time.Minute)
	defer cancel()
	restartAt := time.Now()
	out, err := exec.CommandContext(ctx, "../../hack/cluster-restart.sh", "kube-apiserver", "etcd").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	back := time.Now()
	t.Logf("hack/cluster-restart.sh kube-apiserver etcd: %.1fs\n%s", back.Sub(restartAt).Seconds(), out)

	done := waitAllFinished(t, p.namespace, names, 3*eventually)
	checkRanOnce(t, p.namespace, echoAnswers(names), runs)
	g.Expect(kfnPods(t)).To(Equal(before), "the kfn pods and their restart counts")
	endpoint := facadeEndpoint(t)
	for _, name := range []string{names[0], names[len(names)-1]} {
		g.Eventually(func() (string, error) {
			// 1.0's model shows a stored record's response (newer formats
			// show responseBody only in a synchronous create's answer).
			code, rec, err := facadeDoFormat(http.MethodGet, endpoint+"/v1/functions/echo/executions/"+name, p, "1.0.0", nil)
			return fmt.Sprint(code, " ", rec["status"], " ", rec["response"]), err
		}, eventually, poll).Should(Equal(fmt.Sprintf("200 completed %s:d-%s", name, name)), "the facade's cache caught up")
	}
	t.Logf("API server and etcd restarted with 50 executions in flight: API back %.1fs after the restart began, all finished %.1fs after it was back",
		back.Sub(restartAt).Seconds(), done.Sub(back).Seconds())
}

// TestFailoverFacade runs two facade replicas, reached by their pod IPs: a
// synchronous create through one is seen, running and then finished, by
// the other. Then a facade is SIGKILLed while a caller waits on it: the
// caller gets an error, the Execution still completes once (the operator
// runs it, not the facade), and the caller's retry through the other
// replica is a second, separate execution (Appwrite's semantics: every
// create is a new execution; the facade takes no client-chosen ID).
func TestFailoverFacade(t *testing.T) {
	g := NewWithT(t)
	scaleDeployment(t, "kfn-apiserver", "apiserver", 2)
	t.Cleanup(func() { scaleDeployment(t, "kfn-apiserver", "apiserver", 1) })
	pods := componentPods(t, "apiserver")
	g.Expect(pods).To(HaveLen(2))
	a, b := &pods[0], &pods[1]
	viaA, viaB := "http://"+a.Status.PodIP+":8090", "http://"+b.Status.PodIP+":8090"

	p := newProject(t)
	runs := watchRuns(t, p.namespace)
	shellFunction(t, p.namespace, "echo", strings.Replace(echoScript, "sleep 2", "sleep 5", 1), 60)
	for _, base := range []string{viaA, viaB} {
		g.Eventually(func() (int, error) {
			code, _, err := facadeDo(http.MethodGet, base+"/v1/functions/echo/executions", p, nil)
			return code, err
		}, eventually, poll).Should(Equal(http.StatusOK), "%s knows the function", base)
	}

	first := facadeSyncThroughOneReadOther(t, p, viaA, viaB)
	second := facadeKilledDuringSyncWait(t, p, a, viaA, viaB, []string{first})
	code, rec, err := facadeDo(http.MethodPost, viaB+"/v1/functions/echo/executions", p, map[string]any{"body": "second", "async": false})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusCreated), "%v", rec)
	retry, _ := rec["$id"].(string)
	g.Expect(retry).NotTo(BeElementOf(first, second), "a retry is a new execution")
	g.Expect(rec).To(HaveKeyWithValue("responseBody", retry+":second"))

	g.Expect(phaseCounts(t, p.namespace)).To(Equal(map[fnv1.ExecutionPhase]int{fnv1.PhaseCompleted: 3}), "one execution per create")
	checkRanOnce(t, p.namespace, map[string]string{first: first + ":first", second: second + ":second", retry: retry + ":second"}, runs)
	waitRestarted(t, a, "apiserver")
	g.Eventually(func() (string, error) {
		_, rec, err := facadeDo(http.MethodGet, viaA+"/v1/functions/echo/executions/"+second, p, nil)
		return fmt.Sprint(rec["status"]), err
	}, eventually, poll).Should(Equal("completed"), "the restarted facade serves the record")
}

// facadeSyncThroughOneReadOther creates a synchronous execution through
// one facade while reading it, unfinished and then finished, through the
// other. Returns its ID.
func facadeSyncThroughOneReadOther(t *testing.T, p project, create, read string) string {
	g := NewWithT(t)
	type answer struct {
		code int
		rec  map[string]any
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, rec, err := facadeDo(http.MethodPost, create+"/v1/functions/echo/executions", p, map[string]any{"body": "first", "async": false})
		answered <- answer{code, rec, err}
	}()
	id := facadeNewExecution(t, p, read, nil)
	_, rec, err := facadeDo(http.MethodGet, read+"/v1/functions/echo/executions/"+id, p, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rec["status"]).To(BeElementOf("waiting", "processing"), "the other facade sees it unfinished while the caller waits")

	var got answer
	g.Eventually(answered, eventually).Should(Receive(&got))
	g.Expect(got.err).NotTo(HaveOccurred())
	g.Expect(got.code).To(Equal(http.StatusCreated), "%v", got.rec)
	g.Expect(got.rec).To(HaveKeyWithValue("$id", id))
	g.Expect(got.rec).To(HaveKeyWithValue("responseBody", id+":first"))
	g.Eventually(func() (string, error) {
		_, rec, err := facadeDoFormat(http.MethodGet, read+"/v1/functions/echo/executions/"+id, p, "1.0.0", nil)
		return fmt.Sprint(rec["status"], " ", rec["response"]), err
	}, eventually, poll).Should(Equal("completed "+id+":first"), "the other facade reads the finished record")
	return id
}

// facadeKilledDuringSyncWait SIGKILLs the facade pod a while a synchronous
// create waits on it, and checks that the caller gets an error and the
// Execution completes anyway. Returns its ID.
func facadeKilledDuringSyncWait(t *testing.T, p project, a *corev1.Pod, viaA, viaB string, known []string) string {
	g := NewWithT(t)
	failed := make(chan error, 1)
	go func() {
		code, rec, err := facadeDo(http.MethodPost, viaA+"/v1/functions/echo/executions", p, map[string]any{"body": "second", "async": false})
		if err == nil {
			err = fmt.Errorf("answered %d %v", code, rec)
		}
		failed <- err
	}()
	id := facadeNewExecution(t, p, viaB, known)
	waitFor(t, p.namespace, id, fnv1.PhaseProcessing)
	killedAt := time.Now()
	signalContainer(t, a, "apiserver", syscall.SIGKILL)
	var err error
	g.Eventually(failed, eventually).Should(Receive(&err))
	t.Logf("the caller waiting on the killed facade got: %v", err)
	g.Expect(err.Error()).NotTo(HavePrefix("answered"), "the killed facade cannot have answered")

	exec := waitFor(t, p.namespace, id, fnv1.PhaseCompleted, fnv1.PhaseFailed)
	t.Logf("facade SIGKILLed during a sync wait: its execution %s finished %.1fs later", id, time.Since(killedAt).Seconds())
	g.Expect(exec.Status.Response).To(Equal(id + ":second"))
	return id
}

// facadeNewExecution waits until a facade lists an execution of "echo"
// other than the known ones, and returns its ID.
func facadeNewExecution(t *testing.T, p project, base string, known []string) string {
	var id string
	NewWithT(t).Eventually(func() (string, error) {
		_, rec, err := facadeDo(http.MethodGet, base+"/v1/functions/echo/executions", p, nil)
		list, _ := rec["executions"].([]any)
		for _, e := range list {
			if e, ok := e.(map[string]any); ok && !slices.Contains(known, fmt.Sprint(e["$id"])) {
				id = fmt.Sprint(e["$id"])
			}
		}
		return id, err
	}, eventually, poll).ShouldNot(BeEmpty(), "%s lists the new execution", base)
	return id
}

// facadeDo calls the facade with the project's API key in the newest
// response format and decodes the JSON answer.
func facadeDo(method, url string, p project, params map[string]any) (int, map[string]any, error) {
	return facadeDoFormat(method, url, p, "", params)
}

// facadeDoFormat is facadeDo in a response format ("": the newest).
func facadeDoFormat(method, url string, p project, format string, params map[string]any) (int, map[string]any, error) {
	var body io.Reader
	if params != nil {
		payload, err := json.Marshal(params)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Project", p.namespace)
	req.Header.Set("X-Appwrite-Key", p.apiKey)
	if format != "" {
		req.Header.Set("X-Appwrite-Response-Format", format)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var rec map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer %d: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, rec, nil
}

// burst creates n Executions of function named prefix-NNN; each one's data
// is "d-" and its name.
func burst(t *testing.T, ns, function, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		exec := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Name: names[i], Namespace: ns},
			Spec:       fnv1.ExecutionSpec{FunctionName: function, Data: "d-" + names[i]},
		}
		NewWithT(t).Expect(k8s.Create(bg, exec)).To(Succeed())
	}
	return names
}

// phaseCounts says how many Executions of ns are in each phase.
func phaseCounts(t *testing.T, ns string) map[fnv1.ExecutionPhase]int {
	t.Helper()
	list := &fnv1.ExecutionList{}
	NewWithT(t).Expect(k8s.List(bg, list, client.InNamespace(ns))).To(Succeed())
	counts := map[fnv1.ExecutionPhase]int{}
	for _, e := range list.Items {
		counts[e.Status.Status]++
	}
	return counts
}

// waitInFlight waits until at least n Executions of ns run, so the fault
// meets a burst under way.
func waitInFlight(t *testing.T, ns string, n int) {
	t.Helper()
	NewWithT(t).Eventually(func() int {
		return phaseCounts(t, ns)[fnv1.PhaseProcessing]
	}, eventually, poll).Should(BeNumerically(">=", n))
}

// waitAllFinished waits until every named Execution is completed or
// failed, and returns when it saw that.
func waitAllFinished(t *testing.T, ns string, names []string, bound time.Duration) time.Time {
	t.Helper()
	NewWithT(t).Eventually(func() map[fnv1.ExecutionPhase]int {
		counts := phaseCounts(t, ns)
		delete(counts, fnv1.PhaseCompleted)
		delete(counts, fnv1.PhaseFailed)
		return counts
	}, bound, time.Second).Should(BeEmpty(), "executions not finished")
	return time.Now()
}

// echoAnswers are the answers echoScript gives the Executions of a burst.
func echoAnswers(names []string) map[string]string {
	want := map[string]string{}
	for _, name := range names {
		want[name] = name + ":d-" + name
	}
	return want
}

// checkRanOnce checks that each Execution completed with the answer its
// function printed for it (want: name → response), and that exactly one
// Job and one pod were made for it, the pod's containers never restarted
// and its Job counted at most one finished pod.
func checkRanOnce(t *testing.T, ns string, want map[string]string, runs *runWatch) {
	t.Helper()
	g := NewWithT(t)
	for name, response := range want {
		exec := &fnv1.Execution{}
		g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, exec)).To(Succeed())
		st := exec.Status
		g.Expect(st.Status).To(Equal(fnv1.PhaseCompleted), "%s: %s %s", name, st.Reason, st.Message)
		g.Expect(st.Response).To(Equal(response), "%s answered for itself", name)
		g.Expect(st.Stdout).To(Equal("ran\n"), name)
	}
	runs.mu.Lock()
	defer runs.mu.Unlock()
	for name := range want {
		g.Expect(runs.jobs[name]).To(HaveLen(1), "%s: Jobs made for it", name)
		g.Expect(runs.pods[name]).To(HaveLen(1), "%s: pods made for it", name)
		for uid, restarts := range runs.pods[name] {
			g.Expect(restarts).To(BeZero(), "%s: pod %s restarted a container", name, uid)
		}
		for uid, ended := range runs.jobs[name] {
			g.Expect(ended).To(BeNumerically("<=", 1), "%s: Job %s counted its pods succeeded+failed", name, uid)
		}
	}
}

// runWatch counts, per Execution, the Jobs and pods made for it (by UID),
// the highest container restart count of each pod and the highest
// succeeded+failed count of each Job, as a watch delivers them: the pods
// of a recorded execution are deleted at once, so only a watch started
// before the burst sees them all. It survives the API server going away.
type runWatch struct {
	mu     sync.Mutex
	pods   map[string]map[types.UID]int32
	jobs   map[string]map[types.UID]int32
	listed int // lists done: each kind is listed before it is watched
}

func watchRuns(t *testing.T, ns string) *runWatch {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: k8s.Scheme()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	w := &runWatch{pods: map[string]map[types.UID]int32{}, jobs: map[string]map[types.UID]int32{}}
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	for _, list := range []client.ObjectList{&corev1.PodList{}, &batchv1.JobList{}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.follow(ctx, c, list, ns)
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Listed once before returning, so nothing of the burst comes first.
	NewWithT(t).Eventually(func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.listed
	}, eventually, poll).Should(BeNumerically(">=", 2))
	return w
}

// follow lists and then watches one kind in ns until ctx ends. When the
// watch breaks (the API server restarts), it lists again and watches on:
// the API server being down, nothing can have come and gone meanwhile.
func (w *runWatch) follow(ctx context.Context, c client.WithWatch, list client.ObjectList, ns string) {
	for ctx.Err() == nil {
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			time.Sleep(poll)
			continue
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			w.record(item)
		}
		w.mu.Lock()
		w.listed++
		w.mu.Unlock()
		events, err := c.Watch(ctx, list, &client.ListOptions{Namespace: ns, Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})
		if err != nil {
			time.Sleep(poll)
			continue
		}
		for ev := range events.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			w.record(ev.Object)
		}
		events.Stop()
	}
}

// record counts a pod or a Job of an Execution.
func (w *runWatch) record(obj runtime.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Pod:
		name := o.Labels[kube.LabelExecution]
		if name == "" {
			return
		}
		var restarts int32
		for _, cs := range append(o.Status.InitContainerStatuses, o.Status.ContainerStatuses...) {
			restarts = max(restarts, cs.RestartCount)
		}
		note(w.pods, name, o.UID, restarts)
	case *batchv1.Job:
		if owner := metav1.GetControllerOf(o); owner != nil && owner.Kind == "Execution" {
			note(w.jobs, owner.Name, o.UID, o.Status.Succeeded+o.Status.Failed)
		}
	}
}

// note keeps the highest n seen for uid under name.
func note(m map[string]map[types.UID]int32, name string, uid types.UID, n int32) {
	if m[name] == nil {
		m[name] = map[types.UID]int32{}
	}
	m[name][uid] = max(m[name][uid], n)
}

// managerPods are the manager's pods that are not being deleted.
func managerPods(t *testing.T) []corev1.Pod {
	return componentPods(t, "manager")
}

func componentPods(t *testing.T, component string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	NewWithT(t).Expect(k8s.List(bg, pods, client.InNamespace(releaseNamespace),
		client.MatchingLabels{"app.kubernetes.io/component": component})).To(Succeed())
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// holder is who held the manager's Lease, and since when (as the test saw
// it change).
type holder struct {
	name  string // the holder identity: <pod name>_<uuid of the process>
	at    time.Time
	lease time.Duration
}

func leaseHolder(t *testing.T) holder {
	t.Helper()
	lease := &coordinationv1.Lease{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: managerLease}, lease)).To(Succeed())
	return holder{
		name:  ptr.Deref(lease.Spec.HolderIdentity, ""),
		at:    time.Now(),
		lease: time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second,
	}
}

// waitNewLeader waits until another process than old holds the Lease and
// returns it, with when the test first saw it.
func waitNewLeader(t *testing.T, old holder, since time.Time) holder {
	t.Helper()
	var now holder
	NewWithT(t).Eventually(func() string {
		now = leaseHolder(t)
		return now.name
	}, old.lease+takeoverMargin, poll).ShouldNot(Or(Equal(old.name), BeEmpty()),
		"no new leader %v after the old one stopped (lease %v)", old.lease+takeoverMargin, old.lease)
	t.Logf("lease (%v): %s → %s after %.1fs", old.lease, old.name, now.name, now.at.Sub(since).Seconds())
	return now
}

// electedPair waits until one of the two managers holds the Lease, and
// returns the leader and the follower.
func electedPair(t *testing.T) (leader, follower *corev1.Pod) {
	t.Helper()
	NewWithT(t).Eventually(func() bool {
		pods := managerPods(t)
		name, _, _ := strings.Cut(leaseHolder(t).name, "_")
		leader, follower = nil, nil
		for i := range pods {
			if pods[i].Name == name {
				leader = &pods[i]
			} else {
				follower = &pods[i]
			}
		}
		return len(pods) == 2 && leader != nil && follower.Status.PodIP != ""
	}, eventually, poll).Should(BeTrue(), "one of two managers leads")
	return leader, follower
}

// reconcileTotal sums controller_runtime_reconcile_total over the
// controllers of a manager pod, from its metrics endpoint (the node routes
// to pod IPs). A manager that never led has not started its controllers,
// so it may not export the metric at all: that counts as 0.
func reconcileTotal(t *testing.T, pod *corev1.Pod) float64 {
	t.Helper()
	var total float64
	NewWithT(t).Eventually(func() error {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + pod.Status.PodIP + ":8080/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		total = 0
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "controller_runtime_reconcile_total{") {
				continue
			}
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				return fmt.Errorf("%q: %w", line, err)
			}
			total += v
		}
		return nil
	}, eventually, poll).Should(Succeed(), "metrics of %s", pod.Name)
	return total
}

// signalContainer sends sig to the main process of a container of a kfn
// pod: the tests run on the node, where container processes are host
// processes. It is found by the container ID in its cgroup, and must be
// the kfn binary. Returns the host pid.
func signalContainer(t *testing.T, pod *corev1.Pod, container string, sig syscall.Signal) int {
	t.Helper()
	g := NewWithT(t)
	var id string
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			_, id, _ = strings.Cut(cs.ContainerID, "://")
		}
	}
	g.Expect(id).NotTo(BeEmpty(), "container %s of %s has an ID", container, pod.Name)
	entries, err := os.ReadDir("/proc")
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cgroup, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err != nil || !bytes.Contains(cgroup, []byte(id)) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.HasPrefix(cmdline, []byte("/kfn\x00")) {
			continue
		}
		g.Expect(syscall.Kill(pid, sig)).To(Succeed())
		t.Logf("%v sent to %s/%s (host pid %d)", sig, pod.Name, container, pid)
		return pid
	}
	t.Fatalf("no process of container %s (%s) of pod %s on this node", container, id, pod.Name)
	return 0
}

// waitRestarted waits until the kubelet has restarted a container of pod
// in place and it is ready, and returns when the test saw that.
func waitRestarted(t *testing.T, pod *corev1.Pod, container string) time.Time {
	t.Helper()
	restarts := containerStatus(pod, container).RestartCount
	NewWithT(t).Eventually(func() bool {
		now := &corev1.Pod{}
		if k8s.Get(bg, client.ObjectKeyFromObject(pod), now) != nil {
			return false
		}
		cs := containerStatus(now, container)
		return cs.RestartCount > restarts && cs.Ready
	}, eventually, poll).Should(BeTrue(), "%s/%s restarted and ready", pod.Name, container)
	return time.Now()
}

func containerStatus(pod *corev1.Pod, container string) corev1.ContainerStatus {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}
