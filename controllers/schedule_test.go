package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// The schedule tests move the suite's fake clock, which the manager's
// schedule controller also reads: the manager is a second replica next to
// the reconciler a test runs by hand, and the two must never run a tick
// twice. The clock goes back to where it was when the test ends.

func useClock(t *testing.T, at time.Time) {
	t.Helper()
	before := testClock.Now()
	testClock.SetTime(at)
	t.Cleanup(func() { testClock.SetTime(before) })
}

// scheduler is a fresh schedule controller, as after a restart.
func scheduler() *ScheduleReconciler {
	return &ScheduleReconciler{Client: mgrClient, Scheme: kube.NewScheme(), Recorder: mgrRecorder, Clock: testClock}
}

func reconcileSchedule(t *testing.T, r *ScheduleReconciler, fn *fnv1.Function) ctrl.Result {
	t.Helper()
	// The reconciler reads the cache, which may not hold a new Function yet.
	NewWithT(t).Eventually(func() error {
		return mgrClient.Get(bg, client.ObjectKeyFromObject(fn), &fnv1.Function{})
	}, eventually, poll).Should(Succeed())
	res, err := r.Reconcile(bg, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(fn)})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return res
}

func executionNames(t *testing.T, ns string) []string {
	t.Helper()
	var list fnv1.ExecutionList
	NewWithT(t).Expect(k8s.List(bg, &list, client.InNamespace(ns))).To(Succeed())
	var names []string
	for _, e := range list.Items {
		if e.DeletionTimestamp == nil {
			names = append(names, e.Name)
		}
	}
	return names
}

func getFunction(t *testing.T, ns, name string) *fnv1.Function {
	t.Helper()
	fn := &fnv1.Function{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, fn)).To(Succeed())
	return fn
}

// waitCached waits until the manager's cache holds the Execution, as the
// concurrency policy reads executions from it.
func waitCached(t *testing.T, ns, name string) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		return mgrClient.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, &fnv1.Execution{})
	}, eventually, poll).Should(Succeed())
}

// firstTickAfter is the first tick of "*/5 * * * *" after t.
func firstTickAfter(t time.Time) time.Time {
	return t.Truncate(5 * time.Minute).Add(5 * time.Minute)
}

func TestScheduleTicksRunOnceEach(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	useClock(t, time.Now())
	fn := createFunction(t, ns, "tick", func(f *fnv1.Function) { f.Spec.Schedule = "*/5 * * * *" })
	tick := firstTickAfter(fn.CreationTimestamp.Time)
	testClock.SetTime(tick.Add(-30 * time.Second))

	r := scheduler()
	res := reconcileSchedule(t, r, fn)
	g.Expect(executionNames(t, ns)).To(BeEmpty(), "before the first tick")
	g.Expect(res.RequeueAfter).To(Equal(30 * time.Second))
	// Eventually: the manager's controller may still be writing what it
	// computed with the clock as it was when the Function was created.
	g.Eventually(func() *metav1.Time { return getFunction(t, ns, "tick").Status.ScheduleNext }, eventually, poll).
		Should(HaveField("Time", BeTemporally("==", tick)))

	testClock.SetTime(tick.Add(2 * time.Second))
	res = reconcileSchedule(t, r, fn)
	name := tickName("tick", tick)
	g.Expect(executionNames(t, ns)).To(ConsistOf(name))
	g.Expect(res.RequeueAfter).To(Equal(5*time.Minute - 2*time.Second))
	exec := getExecution(t, ns, name)
	g.Expect(exec.Spec.Trigger).To(Equal(fnv1.TriggerSchedule))
	g.Expect(exec.Spec.Async).To(BeTrue())
	g.Expect(exec.OwnerReferences).To(ContainElement(HaveField("UID", fn.UID)))
	status := getFunction(t, ns, "tick").Status
	g.Expect(status.SchedulePrevious.Time).To(BeTemporally("==", tick))
	g.Expect(status.ScheduleNext.Time).To(BeTemporally("==", tick.Add(5*time.Minute)))

	// A restarted operator (a new reconciler, maybe with a stale cache) and
	// the manager's own controller do not run the tick again.
	reconcileSchedule(t, scheduler(), fn)
	reconcileSchedule(t, r, getFunction(t, ns, "tick"))
	g.Consistently(func() []string { return executionNames(t, ns) }, 2*time.Second, poll).Should(ConsistOf(name))

	// Down for three ticks: one catch-up run, for the latest.
	testClock.SetTime(tick.Add(17 * time.Minute))
	reconcileSchedule(t, scheduler(), fn)
	latest := tickName("tick", tick.Add(15*time.Minute))
	g.Expect(executionNames(t, ns)).To(ConsistOf(name, latest))
	g.Expect(eventReasons(t, ns, "tick")).To(ContainElement("MissedSchedule"))
	g.Eventually(func() []string { return eventReasons(t, ns, "tick") }, eventually, poll).Should(ContainElement("Scheduled"))
}

// The manager's controller fires on its own when the clock has passed ticks.
func TestScheduleControllerCatchesUpOnce(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	now := time.Now().Add(10 * time.Minute).Truncate(time.Minute).Add(30 * time.Second)
	useClock(t, now)
	createFunction(t, ns, "minutely", func(f *fnv1.Function) { f.Spec.Schedule = "* * * * *" })
	want := tickName("minutely", now.Truncate(time.Minute))
	g.Eventually(func() []string { return executionNames(t, ns) }, eventually, poll).Should(ConsistOf(want))
	g.Consistently(func() []string { return executionNames(t, ns) }, 2*time.Second, poll).Should(ConsistOf(want))
	g.Eventually(func() *metav1.Time { return getFunction(t, ns, "minutely").Status.ScheduleNext }, eventually, poll).
		Should(HaveField("Time", BeTemporally("==", now.Truncate(time.Minute).Add(time.Minute))))
}

func TestScheduleConcurrencyPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy fnv1.ConcurrencyPolicy
		// want lists the executions after the second tick: first, second.
		wantFirst, wantSecond bool
		event                 string
	}{
		{fnv1.AllowConcurrent, true, true, "Scheduled"},
		{fnv1.ForbidConcurrent, true, false, "SkippedSchedule"},
		{fnv1.ReplaceConcurrent, false, true, "ReplacedExecution"},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			fn := createFunction(t, ns, "cc", func(f *fnv1.Function) {
				f.Spec.Schedule = "*/5 * * * *"
				f.Spec.ConcurrencyPolicy = tc.policy
			})
			tick := firstTickAfter(fn.CreationTimestamp.Time)
			useClock(t, tick)
			r := scheduler()
			reconcileSchedule(t, r, fn)
			first, second := tickName("cc", tick), tickName("cc", tick.Add(5*time.Minute))
			g.Expect(executionNames(t, ns)).To(ConsistOf(first))
			waitCached(t, ns, first)
			// No kubelet runs it: the first execution stays unfinished.
			g.Eventually(func() fnv1.ExecutionPhase { return getExecution(t, ns, first).Status.Status }, eventually, poll).Should(Equal(fnv1.PhaseWaiting))

			metric := map[fnv1.ConcurrencyPolicy]string{
				fnv1.AllowConcurrent: firingFired, fnv1.ForbidConcurrent: firingSkipped, fnv1.ReplaceConcurrent: firingReplaced,
			}[tc.policy]
			counted := testutil.ToFloat64(triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), metric))
			testClock.SetTime(tick.Add(5 * time.Minute))
			reconcileSchedule(t, r, getFunction(t, ns, "cc"))
			g.Expect(testutil.ToFloat64(triggerFirings.WithLabelValues(string(fnv1.TriggerSchedule), metric))).To(BeNumerically(">", counted))
			var want []string
			if tc.wantFirst {
				want = append(want, first)
			}
			if tc.wantSecond {
				want = append(want, second)
			}
			g.Eventually(func() []string { return executionNames(t, ns) }, eventually, poll).Should(ConsistOf(want))
			g.Eventually(func() []string { return eventReasons(t, ns, "cc") }, eventually, poll).Should(ContainElement(tc.event))
			g.Expect(getFunction(t, ns, "cc").Status.SchedulePrevious.Time).To(BeTemporally("==", tick.Add(5*time.Minute)))
		})
	}
}

func TestScheduleSuspendDisableAndDeadline(t *testing.T) {
	for name, mutate := range map[string]func(*fnv1.Function){
		"suspended": func(f *fnv1.Function) { f.Spec.Suspend = ptr.To(true) },
		"disabled":  func(f *fnv1.Function) { f.Spec.Enabled = ptr.To(false) },
		"too late":  func(f *fnv1.Function) { f.Spec.StartingDeadlineSeconds = ptr.To[int64](60) },
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ns := newNamespace(t)
			fn := createFunction(t, ns, "quiet", func(f *fnv1.Function) {
				f.Spec.Schedule = "*/5 * * * *"
				mutate(f)
			})
			tick := firstTickAfter(fn.CreationTimestamp.Time)
			useClock(t, tick.Add(3*time.Minute))
			reconcileSchedule(t, scheduler(), fn)
			g.Consistently(func() []string { return executionNames(t, ns) }, time.Second, poll).Should(BeEmpty())
			status := getFunction(t, ns, "quiet").Status
			if name == "too late" {
				g.Expect(status.SchedulePrevious.Time).To(BeTemporally("==", tick))
				g.Expect(eventReasons(t, ns, "quiet")).To(ContainElement("MissedSchedule"))
				return
			}
			g.Expect(status.ScheduleNext).To(BeNil())
			g.Expect(status.SchedulePrevious).To(BeNil())
		})
	}
}

func TestDelayedExecution(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "later", nil)

	err := k8s.Create(bg, &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: "sync", Namespace: ns},
		Spec:       fnv1.ExecutionSpec{FunctionName: "later", ScheduledAt: ptr.To(metav1.NewTime(time.Now().Add(time.Hour)))},
	})
	g.Expect(err).To(MatchError(ContainSubstring("scheduled executions must run asynchronously")))

	now := time.Now().Truncate(time.Second)
	useClock(t, now)
	due := now.Add(2 * time.Minute)
	createExecution(t, ns, "delayed", "later", func(e *fnv1.Execution) {
		e.Spec.Async = true
		e.Spec.ScheduledAt = ptr.To(metav1.NewTime(due))
	})
	exec := waitForStatus(t, ns, "delayed", fnv1.PhaseScheduled)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonScheduled))
	g.Expect(exec.OwnerReferences).To(HaveLen(1), "owned by its function at once, so deleting the function cancels it")
	g.Consistently(func() bool {
		err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: jobName("delayed")}, &batchv1.Job{})
		return apierrors.IsNotFound(err)
	}, time.Second, poll).Should(BeTrue(), "no job before it is due")

	// Due: the next reconcile (here set off by a label) runs it.
	testClock.SetTime(due.Add(time.Second))
	exec.Labels = map[string]string{"poke": "1"}
	g.Expect(k8s.Update(bg, exec)).To(Succeed())
	waitForJob(t, ns, jobName("delayed"))
	waitForStatus(t, ns, "delayed", fnv1.PhaseWaiting)
}

func TestScheduleFieldValidation(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate func(*fnv1.Function)
		want   string
	}{
		"unknown concurrency policy": {func(f *fnv1.Function) { f.Spec.ConcurrencyPolicy = "Queue" }, "spec.concurrencyPolicy"},
		"negative deadline":          {func(f *fnv1.Function) { f.Spec.StartingDeadlineSeconds = ptr.To[int64](-1) }, "spec.startingDeadlineSeconds"},
	} {
		t.Run(name, func(t *testing.T) {
			fn := &fnv1.Function{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "fn-", Namespace: ns},
				Spec:       fnv1.FunctionSpec{Image: "busybox:test", Command: []string{"true"}, Schedule: "@hourly"},
			}
			tc.mutate(fn)
			NewWithT(t).Expect(k8s.Create(bg, fn)).To(MatchError(ContainSubstring(tc.want)))
		})
	}
	fn := createFunction(t, ns, "defaults", func(f *fnv1.Function) { f.Spec.Schedule = "@hourly" })
	NewWithT(t).Expect(fn.Spec.ConcurrencyPolicy).To(Equal(fnv1.AllowConcurrent))

	// scheduledAt is part of the immutable spec.
	exec := createExecution(t, ns, "fixed", "defaults", func(e *fnv1.Execution) {
		e.Spec.Async = true
		e.Spec.ScheduledAt = ptr.To(metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second)))
	})
	NewWithT(t).Eventually(func() error {
		exec = getExecution(t, ns, exec.Name)
		exec.Spec.ScheduledAt = ptr.To(metav1.NewTime(exec.Spec.ScheduledAt.Add(time.Hour)))
		return k8s.Update(bg, exec)
	}, eventually, poll).Should(MatchError(ContainSubstring("spec is immutable")))
}
