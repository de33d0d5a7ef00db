package controllers

import (
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

func TestPlanSlots(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	limits := map[string]int{"a": 2, "b": 5}
	limitOf := func(fn string) int { return limits[fn] }
	cases := map[string]struct {
		cands []candidate
		nsCap int
		// want is each waiting candidate's name and hold, in queue order.
		want []string
	}{
		"the oldest get the function's slots, then time, then name": {
			cands: []candidate{{name: "z", function: "a", queued: at(0)}, {name: "y", function: "a", queued: at(1)}, {name: "x", function: "a", queued: at(1)}},
			want:  []string{"z:0", "x:0", "y:1"},
		},
		"running ones take slots first": {
			cands: []candidate{{name: "r", function: "a", queued: at(9), running: true}, {name: "w1", function: "a", queued: at(0)}, {name: "w2", function: "a", queued: at(1)}},
			want:  []string{"w1:0", "w2:1"},
		},
		"the namespace cap holds whatever the function": {
			cands: []candidate{{name: "r", function: "a", queued: at(0), running: true}, {name: "b1", function: "b", queued: at(1)}, {name: "b2", function: "b", queued: at(2)}},
			nsCap: 2,
			want:  []string{"b1:0", "b2:2"},
		},
		"one held by its function does not hold back another function": {
			cands: []candidate{
				{name: "r1", function: "a", queued: at(0), running: true}, {name: "r2", function: "a", queued: at(0), running: true},
				{name: "a3", function: "a", queued: at(1)}, {name: "b1", function: "b", queued: at(2)},
			},
			nsCap: 3,
			want:  []string{"a3:1", "b1:0"},
		},
		"no cap when it is 0": {
			cands: []candidate{{name: "b1", function: "b", queued: at(0)}, {name: "b2", function: "b", queued: at(0)}, {name: "b3", function: "b", queued: at(0)}},
			want:  []string{"b1:0", "b2:0", "b3:0"},
		},
		"over a lowered limit, none starts": {
			cands: []candidate{{name: "r1", function: "a", running: true}, {name: "r2", function: "a", running: true}, {name: "r3", function: "a", running: true}, {name: "w", function: "a"}},
			want:  []string{"w:1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, v := range planSlots(tc.cands, tc.nsCap, limitOf) {
				got = append(got, v.name+":"+string(rune('0'+v.hold)))
			}
			NewWithT(t).Expect(got).To(Equal(tc.want))
		})
	}
}

// A delayed Execution queues once due, at its due time; a slot given in
// this process counts as running before the cache shows its Job.
func TestAsCandidate(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	created := metav1.NewTime(now.Add(-time.Hour))
	exec := func(name string, scheduledAt *time.Time) *fnv1.Execution {
		e := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: created}, Spec: fnv1.ExecutionSpec{FunctionName: "f"}}
		if scheduledAt != nil {
			e.Spec.ScheduledAt = &metav1.Time{Time: *scheduledAt}
		}
		return e
	}
	r := &ExecutionReconciler{}
	r.admission.started = map[types.NamespacedName]bool{{Namespace: "ns", Name: "given"}: true}
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)

	_, ok := r.asCandidate(exec("later", &later), nil, now)
	g.Expect(ok).To(BeFalse(), "not due yet")
	c, ok := r.asCandidate(exec("due", &earlier), nil, now)
	g.Expect(ok).To(BeTrue())
	g.Expect(c.queued).To(Equal(earlier))
	g.Expect(c.running).To(BeFalse())
	c, _ = r.asCandidate(exec("plain", nil), map[string]bool{jobName("plain"): true}, now)
	g.Expect(c.running).To(BeTrue(), "its Job is cached")
	g.Expect(c.queued).To(Equal(created.Time))
	c, _ = r.asCandidate(exec("given", nil), nil, now)
	g.Expect(c.running).To(BeTrue(), "given a slot here")
}

// statusWrites counts the operator's status writes of one Execution.
func statusWrites(ns, name string) int {
	n := 0
	for _, w := range apiWrites.of(ns) {
		if w == "update/status Execution "+name {
			n++
		}
	}
	return n
}

// hasJob reports whether the Execution's Job exists.
func hasJob(ns, name string) bool {
	return k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: jobName(name)}, &batchv1.Job{}) == nil
}

// finishRun plays the kubelet for an Execution whose Job exists: its pod
// runs and ends with a result, and the record is written.
func finishRun(t *testing.T, ns, name string) {
	t.Helper()
	pod := startPod(t, waitForJob(t, ns, jobName(name)))
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(200, "ok", "", "")))
	waitForStatus(t, ns, name, fnv1.PhaseCompleted)
}

// A burst beyond a Function's maxConcurrency and the namespace cap waits,
// reason WaitingForSlot, and starts in creation order as runs finish; no
// more Jobs than the limits allow exist at any time; a fresh ledger (an
// operator restart) sees the same from the cache; and waiting costs one
// status write.
func TestAdmissionHoldsABurstInCreationOrder(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "a", func(f *fnv1.Function) { f.Spec.MaxConcurrency = 2 })
	createFunction(t, ns, "b", func(f *fnv1.Function) { f.Spec.MaxConcurrency = 20 })
	waitForReady(t, ns, "a", "b")
	jobs := func(names ...string) []bool {
		var out []bool
		for _, n := range names {
			out = append(out, hasJob(ns, n))
		}
		return out
	}
	for _, name := range []string{"a-1", "a-2", "a-3", "a-4", "a-5"} {
		createExecution(t, ns, name, "a", nil)
	}
	g.Eventually(func() string { return getExecution(t, ns, "a-5").Status.Reason }, eventually, poll).Should(Equal(fnv1.ReasonWaitingForSlot))
	held := getExecution(t, ns, "a-5")
	g.Expect(held.Status.Message).To(Equal("waiting for a slot: function a runs at most 2 executions at once (its maxConcurrency)"))
	g.Expect(condition(held.Status.Conditions, fnv1.ExecutionSucceeded).Message).To(Equal(held.Status.Message))
	g.Eventually(func() []bool { return jobs("a-1", "a-2") }, eventually, poll).Should(Equal([]bool{true, true}))
	g.Consistently(func() []bool { return jobs("a-3", "a-4", "a-5") }, 2*time.Second, poll).Should(Equal([]bool{false, false, false}))

	finishRun(t, ns, "a-1")
	g.Eventually(func() bool { return hasJob(ns, "a-3") }, eventually, poll).Should(BeTrue(), "the oldest waiting starts")
	g.Consistently(func() []bool { return jobs("a-4", "a-5") }, time.Second, poll).Should(Equal([]bool{false, false}))

	// a-2 and a-3 run: b gets the namespace's 8 other slots, in order.
	var bs []string
	for i := 1; i <= 12; i++ {
		bs = append(bs, fmt.Sprintf("b-%02d", i))
		createExecution(t, ns, bs[i-1], "b", nil)
	}
	g.Eventually(func() []bool { return jobs(bs[:8]...) }, eventually, poll).Should(HaveEach(true))
	g.Eventually(func() string { return getExecution(t, ns, "b-12").Status.Message }, eventually, poll).
		Should(Equal(fmt.Sprintf("waiting for a slot: namespace %s runs at most %d executions at once (the operator's --max-running-per-namespace)", ns, testNamespaceCap)))
	g.Consistently(func() []bool { return jobs(bs[8:]...) }, 2*time.Second, poll).Should(HaveEach(false))

	// A fresh ledger reads the same from the cache.
	fresh := &ExecutionReconciler{Client: mgrClient, Clock: testClock, MaxRunningPerNamespace: testNamespaceCap}
	why, err := fresh.admit(bg, getExecution(t, ns, "a-4"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(why).To(ContainSubstring("function a runs at most 2"))
	why, err = fresh.admit(bg, getExecution(t, ns, "b-09"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(why).To(ContainSubstring("namespace " + ns))

	// A freed slot goes to the oldest that fits: b-09, not a-4 (its
	// function is full).
	finishRun(t, ns, "b-01")
	g.Eventually(func() bool { return hasJob(ns, "b-09") }, eventually, poll).Should(BeTrue())
	g.Consistently(func() []bool { return jobs("a-4", "b-10") }, time.Second, poll).Should(Equal([]bool{false, false}))

	// Started at once: one status write (waiting, with its Job); held
	// first: one more.
	g.Eventually(func() []int { return []int{statusWrites(ns, "b-02"), statusWrites(ns, "b-09")} }, eventually, poll).Should(Equal([]int{1, 2}))
	g.Consistently(func() []int {
		return []int{statusWrites(ns, "b-02"), statusWrites(ns, "b-09"), statusWrites(ns, "b-12")}
	}, time.Second, poll).
		Should(Equal([]int{1, 2, 1}))
}

// Reconciles deciding at once (several workers) give out no slot twice,
// and the slots go to the oldest whichever asks first.
func TestAdmitGivesEachSlotOnce(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var objs []client.Object
	var execs []*fnv1.Execution
	for i := range 30 {
		e := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("run-%02d", i), Namespace: "ns", CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(i) * time.Second))},
			Spec:       fnv1.ExecutionSpec{FunctionName: "f"},
		}
		objs, execs = append(objs, e), append(execs, e)
	}
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(objs...).
		WithIndex(&fnv1.Execution{}, kube.UnfinishedExecutionField, func(client.Object) []string { return []string{"true"} }).Build()
	r := &ExecutionReconciler{Client: c, Clock: clocktesting.NewFakePassiveClock(t0.Add(time.Hour)), MaxRunningPerNamespace: 7}

	admitted := make([]bool, len(execs))
	var wg sync.WaitGroup
	for i := len(execs) - 1; i >= 0; i-- { // the newest ask first
		wg.Add(1)
		go func() {
			defer wg.Done()
			why, err := r.admit(bg, execs[i])
			g.Expect(err).NotTo(HaveOccurred())
			admitted[i] = why == ""
		}()
	}
	wg.Wait()
	want := make([]bool, len(execs))
	for i := range 7 {
		want[i] = true
	}
	g.Expect(admitted).To(Equal(want))
}

// A slot given is held before the cache shows its Job: an execution that
// queues ahead of it afterwards (a delayed one falling due) waits.
func TestAdmitRemembersSlotsTheCacheDoesNotShowYet(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	newer := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: "newer", Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)},
		Spec:       fnv1.ExecutionSpec{FunctionName: "f"},
	}
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(newer).
		WithIndex(&fnv1.Execution{}, kube.UnfinishedExecutionField, func(client.Object) []string { return []string{"true"} }).Build()
	r := &ExecutionReconciler{Client: c, Clock: clocktesting.NewFakePassiveClock(t0.Add(time.Hour)), MaxRunningPerNamespace: 1}
	g.Expect(r.admit(bg, newer)).To(BeEmpty())

	due := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: "due", Namespace: "ns"},
		Spec:       fnv1.ExecutionSpec{FunctionName: "f", Async: true, ScheduledAt: &metav1.Time{Time: t0.Add(-time.Minute)}},
	}
	g.Expect(c.Create(bg, due)).To(Succeed())
	g.Expect(r.admit(bg, due)).To(ContainSubstring("namespace ns runs at most 1"))
	g.Expect(r.admit(bg, newer)).To(BeEmpty(), "its slot stays its own")
}
