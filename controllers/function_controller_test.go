package controllers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

func readyCondition(t *testing.T, ns, name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		fn := &fnv1.Function{}
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, fn); err != nil {
			return nil
		}
		c := condition(fn.Status.Conditions, fnv1.FunctionReady)
		if c == nil || c.ObservedGeneration != fn.Generation {
			return nil
		}
		return c
	}
}

func TestFunctionReadiness(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate func(*fnv1.Function)
		status metav1.ConditionStatus
		reason string
	}{
		"ready": {nil, metav1.ConditionTrue, fnv1.ReasonReady},
		"runtime from the catalog": {func(f *fnv1.Function) {
			f.Spec.Image, f.Spec.Runtime, f.Spec.Command, f.Spec.Entrypoint = "", "node-20", nil, "index.js"
		}, metav1.ConditionTrue, fnv1.ReasonReady},
		"unknown runtime": {func(f *fnv1.Function) { f.Spec.Image, f.Spec.Runtime = "", "cobol-85" }, metav1.ConditionFalse, fnv1.ReasonRuntimeUnknown},
		"no command":      {func(f *fnv1.Function) { f.Spec.Command = nil }, metav1.ConditionFalse, fnv1.ReasonNoCommand},
		"disabled":        {func(f *fnv1.Function) { f.Spec.Enabled = ptr.To(false) }, metav1.ConditionFalse, fnv1.ReasonDisabled},
		"missing code": {func(f *fnv1.Function) {
			f.Spec.Code = &fnv1.CodeSource{ConfigMapRef: &corev1.LocalObjectReference{Name: "absent"}}
		}, metav1.ConditionFalse, fnv1.ReasonCodeNotFound},
		"inline code over what a secret holds": {func(f *fnv1.Function) {
			// Two files of 600 KiB: each is allowed, together they pass a Secret's 1 MiB.
			big := strings.Repeat("x", 600<<10)
			f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"a.js": big, "lib/b.js": big}}
		}, metav1.ConditionFalse, fnv1.ReasonCodeSyncFailed},
		"bad schedule":  {func(f *fnv1.Function) { f.Spec.Schedule = "every day" }, metav1.ConditionFalse, fnv1.ReasonInvalidSchedule},
		"bad time zone": {func(f *fnv1.Function) { f.Spec.Schedule, f.Spec.TimeZone = "0 * * * *", "Mars/Olympus" }, metav1.ConditionFalse, fnv1.ReasonInvalidSchedule},
		"too frequent":  {func(f *fnv1.Function) { f.Spec.Schedule = "@every 30s" }, metav1.ConditionFalse, fnv1.ReasonInvalidSchedule},
	} {
		t.Run(name, func(t *testing.T) {
			fnName := strings.ReplaceAll(name, " ", "-")
			createFunction(t, ns, fnName, tc.mutate)
			NewWithT(t).Eventually(readyCondition(t, ns, fnName), eventually, poll).Should(And(
				Not(BeNil()), HaveField("Status", tc.status), HaveField("Reason", tc.reason)))
		})
	}
}

func TestFunctionBecomesReadyWhenItsIssueIsFixed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := createFunction(t, ns, "fn", func(f *fnv1.Function) { f.Spec.Enabled = ptr.To(false) })
	g.Eventually(readyCondition(t, ns, "fn"), eventually, poll).Should(HaveField("Reason", fnv1.ReasonDisabled))

	g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(fn), fn)).To(Succeed())
	fn.Spec.Enabled = ptr.To(true)
	fn.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"index.sh": "v1"}}
	g.Expect(k8s.Update(bg, fn)).To(Succeed())
	g.Eventually(readyCondition(t, ns, "fn"), eventually, poll).Should(HaveField("Status", metav1.ConditionTrue))

	// Editing inline code updates the Secret the pods mount.
	g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(fn), fn)).To(Succeed())
	fn.Spec.Code.Inline = map[string]string{"index.sh": "v2"}
	g.Expect(k8s.Update(bg, fn)).To(Succeed())
	g.Eventually(func() string {
		secret := &corev1.Secret{}
		_ = k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "fn-code"}, secret)
		return string(secret.Data["index.sh"])
	}, eventually, poll).Should(Equal("v2"))
}

func TestExecutionHistoryIsPruned(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", func(f *fnv1.Function) {
		f.Spec.SuccessfulExecutionsHistoryLimit = ptr.To[int32](2)
		f.Spec.FailedExecutionsHistoryLimit = ptr.To[int32](1)
	})
	finished := 0
	finish := func(name string, code int) {
		createExecution(t, ns, name, "fn", nil)
		pod := startPod(t, waitForJob(t, ns, name))
		res := result(code, "", "", "")
		finished++
		res.FinishedAt = res.StartedAt.Add(time.Duration(finished) * time.Second)
		setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, res))
		want := fnv1.PhaseCompleted
		if code >= 500 {
			want = fnv1.PhaseFailed
		}
		waitForStatus(t, ns, name, want)
	}
	for _, name := range []string{"ok-1", "ok-2", "ok-3"} {
		finish(name, 200)
	}
	for _, name := range []string{"bad-1", "bad-2"} {
		finish(name, 500)
	}
	g.Eventually(func() []string {
		var list fnv1.ExecutionList
		g.Expect(k8s.List(bg, &list, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, e := range list.Items {
			if e.DeletionTimestamp == nil {
				names = append(names, e.Name)
			}
		}
		return names
	}, eventually, poll).Should(ConsistOf("ok-2", "ok-3", "bad-2"), "the newest records are kept")
}

// The samples apply cleanly with kubectl against the real API server.
func TestSamplesApplyWithKubectl(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	user, err := testEnv.AddUser(envtest.User{Name: "sample-admin", Groups: []string{"system:masters"}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(os.WriteFile(path, kubeconfig, 0o600)).To(Succeed())

	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", path, "-n", ns, "apply", "-f", filepath.Join("..", "config", "samples")).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("created"))
	out, err = exec.Command(kubectl, "--kubeconfig", path, "-n", ns, "get", "fn,exec").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("hello"))
}

// finishAt runs an Execution of fn to completed (code < 500) or failed,
// as the runner reports it finished at the given time.
func finishAt(t *testing.T, ns, fn, name string, code int, finished time.Time) {
	t.Helper()
	res := result(code, "", "", "")
	res.StartedAt, res.FinishedAt = finished.Add(-250*time.Millisecond), finished
	finishWith(t, ns, fn, name, res)
}

// finishWith runs an Execution of fn to the runner's result res.
func finishWith(t *testing.T, ns, fn, name string, res runner.Result) *fnv1.Execution {
	t.Helper()
	createExecution(t, ns, name, fn, nil)
	pod := startPod(t, waitForJob(t, ns, name))
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, res))
	want := fnv1.PhaseCompleted
	if res.StatusCode >= 500 {
		want = fnv1.PhaseFailed
	}
	return waitForStatus(t, ns, name, want)
}

// Age is the primary rule: records older than the retention go, newer
// ones and unfinished ones stay; the count cap still applies within it.
func TestFinishedExecutionsExpireAfterTheRetention(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", nil)
	createFunction(t, ns, "capped", func(f *fnv1.Function) { f.Spec.SuccessfulExecutionsHistoryLimit = ptr.To[int32](1) })
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	finishAt(t, ns, "fn", "old-ok", 200, start)
	finishAt(t, ns, "fn", "old-failed", 500, start)
	finishAt(t, ns, "fn", "new-ok", 200, start.Add(30*time.Minute))
	createExecution(t, ns, "running", "fn", nil)
	waitForJob(t, ns, "running")

	// A second Function controller, as an operator started with a retention.
	clk := clocktesting.NewFakePassiveClock(start.Add(59 * time.Minute))
	r := &FunctionReconciler{Client: mgrClient, APIReader: k8s, Scheme: kube.NewScheme(), Recorder: mgrRecorder, Retention: time.Hour, Clock: clk}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "fn"}}
	res, err := r.Reconcile(bg, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically("~", time.Minute, time.Second), "it comes back when the oldest record expires")
	g.Expect(getExecution(t, ns, "old-ok").DeletionTimestamp).To(BeNil(), "not expired yet")

	clk.SetTime(start.Add(61 * time.Minute))
	res, err = r.Reconcile(bg, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically("~", 29*time.Minute, time.Second), "then when the newer one does")
	waitForGone(t, &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "old-ok", Namespace: ns}})
	waitForGone(t, &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "old-failed", Namespace: ns}})
	g.Expect(getExecution(t, ns, "new-ok").DeletionTimestamp).To(BeNil(), "newer than the retention: kept")
	g.Expect(getExecution(t, ns, "running").Status.Status.IsFinished()).To(BeFalse(), "unfinished executions stay")

	// Both within the retention, but one over the cap: the oldest goes.
	finishAt(t, ns, "capped", "c-1", 200, start.Add(40*time.Minute))
	finishAt(t, ns, "capped", "c-2", 200, start.Add(45*time.Minute))
	_, err = r.Reconcile(bg, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "capped"}})
	g.Expect(err).NotTo(HaveOccurred())
	waitForGone(t, &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "c-1", Namespace: ns}})
	g.Expect(getExecution(t, ns, "c-2").DeletionTimestamp).To(BeNil())
}

// The caps are on by default, at what a busy function needs, and an
// object the API server has not defaulted gets them too.
func TestHistoryLimitDefaults(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := createFunction(t, ns, "fn", nil)
	g.Expect(fn.Spec.SuccessfulExecutionsHistoryLimit).To(HaveValue(BeEquivalentTo(fnv1.DefaultExecutionsHistoryLimit)))
	g.Expect(fn.Spec.FailedExecutionsHistoryLimit).To(HaveValue(BeEquivalentTo(fnv1.DefaultExecutionsHistoryLimit)))
	completed, failed := (&fnv1.Function{}).HistoryLimits()
	g.Expect([]int{completed, failed}).To(Equal([]int{fnv1.DefaultExecutionsHistoryLimit, fnv1.DefaultExecutionsHistoryLimit}))
}

func TestExecutionOfCodeTooLargeToStoreFailsAtOnce(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	big := strings.Repeat("x", 600<<10)
	createFunction(t, ns, "big", func(f *fnv1.Function) {
		f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"a.js": big, "lib/b.js": big}}
	})
	g.Eventually(readyCondition(t, ns, "big"), eventually, poll).Should(HaveField("Reason", fnv1.ReasonCodeSyncFailed))

	createExecution(t, ns, "run", "big", nil)
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonFunctionNotReady))
	g.Expect(exec.Status.Message).To(ContainSubstring("over the 1048576 a Secret holds"))
	g.Expect(exec.Status.JobName).To(BeEmpty(), "no Job whose pod would wait for a code Secret that never comes")
}
