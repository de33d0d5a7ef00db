package controllers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

const (
	eventually = 20 * time.Second
	poll       = 50 * time.Millisecond
)

var bg = context.Background()

func createFunction(t *testing.T, ns, name string, mutate func(*fnv1.Function)) *fnv1.Function {
	t.Helper()
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: fnv1.FunctionSpec{
			Image:   "busybox:test",
			Command: []string{"sh", "-c", "echo hello"},
			Timeout: 5,
		},
	}
	if mutate != nil {
		mutate(fn)
	}
	gomega.NewWithT(t).Expect(k8s.Create(bg, fn)).To(gomega.Succeed())
	return fn
}

// waitForReady waits until the Functions report Ready. The operator wrote
// that after reading them from its cache, so events of objects made
// afterwards reach them: an event that comes before the cache has seen a
// new Function is not delivered to it (a documented limitation).
func waitForReady(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		gomega.NewWithT(t).Eventually(func() bool {
			fn := &fnv1.Function{}
			if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, fn); err != nil {
				return false
			}
			return meta.IsStatusConditionTrue(fn.Status.Conditions, fnv1.FunctionReady)
		}, eventually, poll).Should(gomega.BeTrue(), "function %s/%s is not Ready", ns, name)
	}
}

func createExecution(t *testing.T, ns, name, function string, mutate func(*fnv1.Execution)) *fnv1.Execution {
	t.Helper()
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       fnv1.ExecutionSpec{FunctionName: function, Data: "hello data"},
	}
	if mutate != nil {
		mutate(exec)
	}
	gomega.NewWithT(t).Expect(k8s.Create(bg, exec)).To(gomega.Succeed())
	return exec
}

func getExecution(t *testing.T, ns, name string) *fnv1.Execution {
	t.Helper()
	exec := &fnv1.Execution{}
	gomega.NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, exec)).To(gomega.Succeed())
	return exec
}

// waitForStatus waits until the Execution reaches the given status and returns it.
func waitForStatus(t *testing.T, ns, name string, want fnv1.ExecutionPhase) *fnv1.Execution {
	t.Helper()
	exec := &fnv1.Execution{}
	gomega.NewWithT(t).Eventually(func() fnv1.ExecutionPhase {
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, exec); err != nil {
			return ""
		}
		return exec.Status.Status
	}, eventually, poll).Should(gomega.Equal(want), "execution %s/%s: %+v", ns, name, &exec.Status)
	return exec
}

func waitForJob(t *testing.T, ns, name string) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	gomega.NewWithT(t).Eventually(func() error {
		return k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, job)
	}, eventually, poll).Should(gomega.Succeed())
	return job
}

func waitForGone(t *testing.T, obj client.Object) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() bool {
		err := k8s.Get(bg, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err)
	}, eventually, poll).Should(gomega.BeTrue(), "%T %s still exists", obj, obj.GetName())
}

// runInNewNamespace creates a plain Function "fn" and an Execution "run" of
// it in a namespace of their own, and waits for the Execution's Job.
func runInNewNamespace(t *testing.T) (ns string, job *batchv1.Job) {
	t.Helper()
	ns = newNamespace(t)
	createFunction(t, ns, "fn", nil)
	createExecution(t, ns, "run", "fn", nil)
	return ns, waitForJob(t, ns, "run")
}

// startRunning starts the Job's pod with the function running, and waits
// until the Execution says so.
func startRunning(t *testing.T, job *batchv1.Job) *corev1.Pod {
	t.Helper()
	pod := startPod(t, job)
	setFunctionState(t, pod, corev1.PodRunning, running(time.Now()))
	waitForStatus(t, job.Namespace, job.Labels[labelExecution], fnv1.PhaseProcessing)
	return pod
}

// startPod does what the Job controller and the scheduler would: create the
// Job's pod from its template.
func startPod(t *testing.T, job *batchv1.Job) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            job.Name + "-abcde",
			Namespace:       job.Namespace,
			Labels:          job.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	gomega.NewWithT(t).Expect(k8s.Create(bg, pod)).To(gomega.Succeed())
	return pod
}

// setFunctionState writes the function container's state, as the kubelet would.
func setFunctionState(t *testing.T, pod *corev1.Pod, phase corev1.PodPhase, state corev1.ContainerState) {
	t.Helper()
	g := gomega.NewWithT(t)
	g.Eventually(func() error {
		if err := k8s.Get(bg, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = phase
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: functionContainer, Image: pod.Spec.Containers[0].Image, State: state,
			Ready: state.Running != nil,
		}}
		return k8s.Status().Update(bg, pod)
	}, eventually, poll).Should(gomega.Succeed())
}

func running(at time.Time) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(at)}}
}

// terminatedWith is the container state after the runner reported res.
func terminatedWith(t *testing.T, res runner.Result) corev1.ContainerState {
	t.Helper()
	msg, err := json.Marshal(res)
	gomega.NewWithT(t).Expect(err).NotTo(gomega.HaveOccurred())
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(res.ExitCode), Reason: "Completed", Message: string(msg),
		StartedAt: metav1.NewTime(res.StartedAt), FinishedAt: metav1.NewTime(res.FinishedAt),
	}}
}

func result(statusCode int, response, stdout, stderr string) runner.Result {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	return runner.Result{
		Version: runner.ResultVersion, StatusCode: statusCode, Response: response, Stdout: stdout, Stderr: stderr,
		StartedAt: start, FinishedAt: start.Add(250 * time.Millisecond), Duration: 0.25,
	}
}

func eventReasons(t *testing.T, ns, name string) []string {
	t.Helper()
	var events corev1.EventList
	gomega.NewWithT(t).Expect(k8s.List(bg, &events, client.InNamespace(ns))).To(gomega.Succeed())
	var reasons []string
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// requestSecretLabels are the labels of a request Secret made for the
// Execution named execution, as the REST facade sets them.
func requestSecretLabels(execution string) map[string]string {
	return map[string]string{kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: execution}
}

func envValue(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}
