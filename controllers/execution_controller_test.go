package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

// A project namespace's Appwrite ID reaches the pod as
// APPWRITE_FUNCTION_PROJECT_ID, and a Function's as APPWRITE_FUNCTION_ID.
func TestPodSeesAppwriteIDs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	namespace := &corev1.Namespace{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Name: ns}, namespace)).To(Succeed())
	namespace.Labels = map[string]string{kube.LabelProject: "true", kube.LabelProjectID: "My_Project"}
	g.Expect(k8s.Update(bg, namespace)).To(Succeed())
	fn := createFunction(t, ns, "hello", func(fn *fnv1.Function) {
		fn.Labels = map[string]string{kube.LabelFunctionID: "Hello.World"}
	})
	// The operator's cache sees the label before the Execution's reconcile.
	g.Eventually(func() error {
		return mgrClient.Get(bg, types.NamespacedName{Name: ns}, &corev1.Namespace{})
	}, eventually, poll).Should(Succeed())
	createExecution(t, ns, "run-1", fn.Name, nil)
	env := waitForJob(t, ns, "run-1").Spec.Template.Spec.Containers[0].Env
	g.Expect(envValue(env, contract.EnvProjectID)).To(HaveField("Value", "My_Project"))
	g.Expect(envValue(env, contract.EnvFunctionID)).To(HaveField("Value", "Hello.World"))
}

func TestExecutionCreatesRestrictedJob(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "api-keys", Namespace: ns},
		StringData: map[string]string{"key": "s3cret"},
	})).To(Succeed())
	fn := createFunction(t, ns, "hello", func(fn *fnv1.Function) {
		fn.Spec.Command = []string{"sh"}
		fn.Spec.Entrypoint = "main.sh"
		fn.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo hi > $KFN_RESPONSE_FILE"}}
		fn.Spec.Timeout = 7
		fn.Spec.Variables = []fnv1.Variable{
			{Name: "GREETING", Value: ptr.To("hi")},
			{Name: "API_KEY", ValueFrom: &fnv1.VariableSource{SecretKeyRef: corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "api-keys"}, Key: "key"}}},
		}
	})
	createExecution(t, ns, "run-1", fn.Name, func(e *fnv1.Execution) {
		e.Spec.UserID = "user-42"
	})

	job := waitForJob(t, ns, "run-1")
	exec := waitForStatus(t, ns, "run-1", fnv1.PhaseWaiting)
	g.Expect(exec.Status.JobName).To(Equal(job.Name))
	g.Expect(metav1.IsControlledBy(job, exec)).To(BeTrue(), "the Job is controlled by its Execution")
	g.Expect(exec.OwnerReferences).To(ContainElement(HaveField("UID", fn.UID)), "the Execution is owned by its Function")
	g.Expect(condition(exec.Status.Conditions, fnv1.ExecutionSucceeded)).To(And(
		HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", fnv1.ReasonWaiting),
		HaveField("ObservedGeneration", exec.Generation)))

	spec := job.Spec
	g.Expect(spec.BackoffLimit).To(Equal(ptr.To[int32](0)))
	g.Expect(spec.ActiveDeadlineSeconds).To(Equal(ptr.To(int64(7) + int64(testStartupGrace/time.Second))))
	pod := spec.Template.Spec
	g.Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
	g.Expect(pod.AutomountServiceAccountToken).To(Equal(ptr.To(false)))
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(pod.InitContainers).To(HaveLen(1))
	g.Expect(pod.InitContainers[0].Image).To(Equal(testRunnerImage))
	g.Expect(pod.Containers).To(HaveLen(1))
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		sc := c.SecurityContext
		g.Expect(sc.AllowPrivilegeEscalation).To(Equal(ptr.To(false)), c.Name)
		g.Expect(sc.Capabilities.Drop).To(Equal([]corev1.Capability{"ALL"}), c.Name)
		g.Expect(sc.ReadOnlyRootFilesystem).To(Equal(ptr.To(true)), c.Name)
		g.Expect(sc.RunAsNonRoot).To(Equal(ptr.To(true)), c.Name)
		g.Expect(sc.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault), c.Name)
	}
	main := pod.Containers[0]
	g.Expect(main.Image).To(Equal("busybox:test"))
	g.Expect(main.Resources).To(Equal(resources("cpu=50m,memory=64Mi", "memory=256Mi")), "an unconfigured function is bounded")
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			g.Expect(v.EmptyDir.SizeLimit).NotTo(BeNil(), v.Name)
		}
	}
	g.Expect(main.Command).To(Equal([]string{contract.Runner, "run", "--", "sh", "main.sh"}))
	g.Expect(main.WorkingDir).To(Equal(contract.CodeDir))
	for name, want := range map[string]string{
		"APPWRITE_FUNCTION_ID": "hello", "APPWRITE_FUNCTION_NAME": "hello", "APPWRITE_FUNCTION_TRIGGER": "http",
		"APPWRITE_FUNCTION_DATA": "hello data", "APPWRITE_FUNCTION_EVENT": "", "APPWRITE_FUNCTION_EVENT_DATA": "",
		"APPWRITE_FUNCTION_USER_ID": "user-42", "APPWRITE_FUNCTION_PROJECT_ID": ns,
		"APPWRITE_FUNCTION_EXECUTION_ID": "run-1", "KFN_TIMEOUT": "7", "GREETING": "hi",
	} {
		g.Expect(envValue(main.Env, name)).To(HaveField("Value", want), name)
	}
	g.Expect(envValue(main.Env, "API_KEY").ValueFrom.SecretKeyRef.Name).To(Equal("api-keys"))
	g.Expect(envValue(main.Env, "APPWRITE_FUNCTION_JWT")).To(BeNil(), "no JWT without a caller JWT")

	// The inline code lives in a Secret the Function controls, mounted read-only.
	code := &corev1.Secret{}
	g.Eventually(func() error {
		return k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "hello-code"}, code)
	}, eventually, poll).Should(Succeed())
	g.Expect(code.Data).To(HaveKeyWithValue("main.sh", []byte("echo hi > $KFN_RESPONSE_FILE")))
	g.Expect(metav1.IsControlledBy(code, fn)).To(BeTrue())
	g.Expect(pod.Volumes).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", "hello-code")))
}

func TestExecutionLifecycleCapturesResultAndCleansUp(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)

	started := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	setFunctionState(t, pod, corev1.PodRunning, running(started))
	exec := waitForStatus(t, ns, "run", fnv1.PhaseProcessing)
	g.Expect(exec.Status.PodName).To(Equal(pod.Name))
	g.Expect(exec.Status.StartTime.Time).To(BeTemporally("==", started))

	res := result(201, `{"ok":true}`, "some output\n", "a warning\n")
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, res))
	exec = waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	g.Expect(exec.Status.StatusCode).To(Equal(int32(201)))
	g.Expect(exec.Status.Response).To(Equal(`{"ok":true}`))
	g.Expect(exec.Status.Stdout).To(Equal("some output\n"))
	g.Expect(exec.Status.Stderr).To(Equal("a warning\n"))
	g.Expect(exec.Status.Duration).To(Equal(0.25))
	g.Expect(exec.Status.ExitCode).To(Equal(ptr.To[int32](0)))
	g.Expect(exec.Status.CompletionTime.Time).To(BeTemporally("==", res.FinishedAt.Truncate(time.Second)), "metav1.Time keeps whole seconds")
	g.Expect(exec.Status.Truncated).To(BeEmpty())
	g.Expect(condition(exec.Status.Conditions, fnv1.ExecutionSucceeded)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", fnv1.ReasonCompleted)))

	// Counted just after the status write the test saw.
	g.Eventually(func() float64 {
		return testutil.ToFloat64(executionsFinished.WithLabelValues("completed", fnv1.ReasonCompleted))
	}, eventually, poll).Should(BeNumerically(">=", 1))

	// Finished without waiting for the Job's own Complete condition, and
	// the Job goes once the record is safe.
	waitForGone(t, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: ns}})
	// One Event per run, on how it ended: the phases before are in the status.
	g.Eventually(func() []string { return eventReasons(t, ns, "run") }, eventually, poll).Should(ConsistOf(fnv1.ReasonCompleted))
	// The record outlives the Job.
	g.Consistently(func() fnv1.ExecutionPhase { return getExecution(t, ns, "run").Status.Status }, time.Second, 100*time.Millisecond).
		Should(Equal(fnv1.PhaseCompleted))
}

func TestFailingFunctionIsFailedWith500(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)

	res := result(500, "", "", "boom\n")
	res.ExitCode = 3
	setFunctionState(t, pod, corev1.PodFailed, terminatedWith(t, res))
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(Equal("boom\n"))
	g.Expect(exec.Status.ExitCode).To(Equal(ptr.To[int32](3)))
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonFunctionFailed))
	g.Expect(condition(exec.Status.Conditions, fnv1.ExecutionSucceeded)).To(HaveField("Status", metav1.ConditionFalse))
}

func TestTimedOutFunction(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)

	res := result(500, "", "", "Execution timed out after 5s.\n")
	res.ExitCode, res.TimedOut = 124, true
	setFunctionState(t, pod, corev1.PodFailed, terminatedWith(t, res))
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonTimedOut))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(ContainSubstring("timed out"))
}

func TestJobDeadlineBeforeThePodRanFailsAsTimedOut(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)
	setPodUnschedulable(t, pod, "0/1 nodes are available: 1 Too many pods.")
	g.Eventually(func() string { return getExecution(t, ns, "run").Status.Message }, eventually, poll).
		Should(Equal("Unschedulable: 0/1 nodes are available: 1 Too many pods."), "the pending reason is shown while waiting")
	g.Expect(getExecution(t, ns, "run").Status.PodName).To(Equal(pod.Name))

	// What the Job controller writes when activeDeadlineSeconds passes,
	// once it has deleted the pod and before the pod is gone: the interim
	// condition; Failed follows once the pod is gone.
	failJob(t, job, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", batchv1.JobFailureTarget)
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonTimedOut))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(And(ContainSubstring("timed out after 5s"), ContainSubstring("never started"),
		ContainSubstring("Unschedulable: 0/1 nodes are available: 1 Too many pods.")))
	g.Expect(exec.Status.CompletionTime.Time).To(BeTemporally("==", testClock.Now()))
}

func TestImageThatCannotBePulledFailsAtOnce(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)
	setFunctionState(t, pod, corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
		Reason: "ErrImagePull", Message: `failed to pull and unpack image "busybox:test": not found`}})
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonImagePullFailed))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(Equal(`container function cannot start: its image busybox:test cannot be pulled: ErrImagePull: failed to pull and unpack image "busybox:test": not found`))
}

func TestOutOfMemoryWithoutAResultSaysSo(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startRunning(t, job)
	// The OOM killer took the runner too: no termination message.
	setFunctionState(t, pod, corev1.PodFailed, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}})
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonOOMKilled))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(HavePrefix("the function ran out of memory: it went over its memory limit of 256Mi and was killed (OOMKilled)"))
}

// setPodUnschedulable writes what the scheduler does when no node has room.
func setPodUnschedulable(t *testing.T, pod *corev1.Pod, message string) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		if err := k8s.Get(bg, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodPending
		pod.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message,
			LastTransitionTime: metav1.Now(),
		}}
		return k8s.Status().Update(bg, pod)
	}, eventually, poll).Should(Succeed())
}

func TestVanishedPodFailsTheExecution(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startRunning(t, job)

	g.Expect(k8s.Delete(bg, pod, client.GracePeriodSeconds(0))).To(Succeed())
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonPodLost))
	g.Expect(exec.Status.Message).To(ContainSubstring(pod.Name))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.CompletionTime.Time).To(BeTemporally("==", testClock.Now()))
}

func TestEvictedPodFailsTheExecution(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startRunning(t, job)

	g.Eventually(func() error {
		if err := k8s.Get(bg, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase, pod.Status.Reason, pod.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
		pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}}
		return k8s.Status().Update(bg, pod)
	}, eventually, poll).Should(Succeed())
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonNoResult))
	g.Expect(exec.Status.Message).To(And(ContainSubstring("exit code 137"), ContainSubstring("Evicted"), ContainSubstring("low on resource")))
}

func TestDeletedJobFailsTheExecution(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	waitForStatus(t, ns, "run", fnv1.PhaseWaiting)
	g.Expect(k8s.Delete(bg, job)).To(Succeed())
	exec := waitForStatus(t, ns, "run", fnv1.PhaseFailed)
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonJobLost))
}

func TestLargeResultIsReadFromTheLogAndCapped(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	pod := startPod(t, job)

	full := result(200, strings.Repeat("r", 10_000), strings.Repeat("o", 200_000)+"THE END", "")
	line, msg, err := runner.Encode(&full)
	g.Expect(err).NotTo(HaveOccurred())
	testLogs.set(ns, pod.Name, append(append([]byte("\n"), line...), '\n'))
	header, err := runner.ParseTerminationMessage(string(msg))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(header.InLog).To(BeTrue())
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, *header))

	exec := waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	g.Expect(exec.Status.Response).To(Equal(full.Response), "a response within its share is kept whole")
	g.Expect(exec.Status.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
	g.Expect(exec.Status.Stdout).To(HaveSuffix("THE END"), "logs keep their tail")
	g.Expect(len(exec.Status.Response) + len(exec.Status.Stdout) + len(exec.Status.Stderr)).To(BeNumerically("<=", testMaxRecordBytes))
	g.Expect(exec.Status.Truncated).To(Equal([]string{"stdout"}))
}

func TestLoggingDisabledDropsStdoutAndStderr(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", func(fn *fnv1.Function) { fn.Spec.Logging = ptr.To(false) })
	createExecution(t, ns, "run", "fn", nil)
	pod := startPod(t, waitForJob(t, ns, "run"))
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(200, "answer", "secret log", "secret err")))
	exec := waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	g.Expect(exec.Status.Response).To(Equal("answer"))
	g.Expect(exec.Status.Stdout).To(BeEmpty())
	g.Expect(exec.Status.Stderr).To(BeEmpty())
}

func TestExecutionsThatCannotRunFailAtOnce(t *testing.T) {
	ns := newNamespace(t)
	createFunction(t, ns, "off", func(fn *fnv1.Function) { fn.Spec.Enabled = ptr.To(false) })
	createFunction(t, ns, "odd", func(fn *fnv1.Function) {
		fn.Spec.Image, fn.Spec.Runtime, fn.Spec.Command = "", "cobol-85", nil
	})
	useClock(t, time.Now().Add(time.Minute)) // past the grace a new Execution gives a missing Function
	for name, tc := range map[string]struct{ function, reason string }{
		"missing":  {"nope", fnv1.ReasonFunctionNotFound},
		"disabled": {"off", fnv1.ReasonFunctionDisabled},
		"unknown":  {"odd", fnv1.ReasonFunctionNotReady},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			createExecution(t, ns, name, tc.function, nil)
			exec := waitForStatus(t, ns, name, fnv1.PhaseFailed)
			g.Expect(exec.Status.Reason).To(Equal(tc.reason))
			g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
			g.Expect(exec.Status.Stderr).NotTo(BeEmpty())
			g.Expect(exec.Status.JobName).To(BeEmpty(), "no Job is made for an execution that cannot run")
		})
	}
}

func TestCallerJWTTravelsOnlyThroughAnOwnedSecret(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	useClock(t, time.Now().Add(time.Minute)) // past the grace a new Execution gives a missing Secret
	createFunction(t, ns, "fn", nil)
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "run-jwt", Namespace: ns, Labels: requestSecretLabels("run")},
		StringData: map[string]string{"jwt": "eyJhbGciOi.token"},
	})).To(Succeed())
	exec := createExecution(t, ns, "run", "fn", func(e *fnv1.Execution) { e.Spec.JWTSecretName = "run-jwt" })
	job := waitForJob(t, ns, "run")

	jwt := envValue(job.Spec.Template.Spec.Containers[0].Env, "APPWRITE_FUNCTION_JWT")
	g.Expect(jwt).NotTo(BeNil())
	g.Expect(jwt.Value).To(BeEmpty())
	g.Expect(jwt.ValueFrom.SecretKeyRef).To(And(HaveField("Name", "run-jwt"), HaveField("Key", "jwt")))
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "run-jwt"}, secret)).To(Succeed())
	g.Expect(secret.OwnerReferences).To(ContainElement(HaveField("UID", getExecution(t, ns, exec.Name).UID)))

	// Without the Secret the execution fails with a clear reason.
	createExecution(t, ns, "no-jwt", "fn", func(e *fnv1.Execution) { e.Spec.JWTSecretName = "absent" })
	failed := waitForStatus(t, ns, "no-jwt", fnv1.PhaseFailed)
	g.Expect(failed.Status.Reason).To(Equal(fnv1.ReasonSecretNotFound))
}

func TestDeletingAFunctionDeletesItsExecutionsAndJobs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := createFunction(t, ns, "fn", nil)
	createExecution(t, ns, "run", "fn", nil)
	job := waitForJob(t, ns, "run")
	g.Eventually(func() []metav1.OwnerReference { return getExecution(t, ns, "run").OwnerReferences }, eventually, poll).
		ShouldNot(BeEmpty())

	g.Expect(k8s.Delete(bg, fn, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	waitForGone(t, &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: ns}})
	waitForGone(t, job)
}

// failJob writes the Job's failure conditions as the Job controller does:
// the interim FailureTarget, then Failed once the pods are gone; types
// limits them to those given.
func failJob(t *testing.T, job *batchv1.Job, reason, message string, types ...batchv1.JobConditionType) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() error {
		if err := k8s.Get(bg, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		now := metav1.Now()
		if job.Status.StartTime == nil {
			job.Status.StartTime = &now
		}
		if len(types) == 0 {
			types = []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed}
		}
		job.Status.Conditions = nil
		for _, typ := range types {
			job.Status.Conditions = append(job.Status.Conditions,
				batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now})
		}
		return k8s.Status().Update(bg, job)
	}, eventually, poll).Should(Succeed())
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// kubectl apply -f of a folder may create the Execution just before its
// Function: the Execution waits for it instead of failing.
func TestExecutionWaitsBrieflyForItsFunction(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	useClock(t, time.Now()) // the Execution is brand new: within the grace period
	createExecution(t, ns, "early", "late", nil)
	g.Eventually(func() string { return getExecution(t, ns, "early").Status.Message }, eventually, poll).
		Should(Equal("waiting for the function to be created"))
	g.Consistently(func() fnv1.ExecutionPhase { return getExecution(t, ns, "early").Status.Status }, time.Second, poll).
		Should(Equal(fnv1.PhaseWaiting))

	createFunction(t, ns, "late", nil)
	waitForJob(t, ns, "early")
}

func TestLargeBodyIsProjectedFromItsSecrets(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", nil)
	for i, part := range []string{"first-", "second"} {
		g.Expect(k8s.Create(bg, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("run-body-%d", i), Namespace: ns, Labels: requestSecretLabels("run")},
			StringData: map[string]string{contract.BodySecretKey: part},
		})).To(Succeed())
	}
	createExecution(t, ns, "run", "fn", func(e *fnv1.Execution) {
		e.Spec.Data, e.Spec.BodySecrets = "", []string{"run-body-0", "run-body-1"}
	})
	job := waitForJob(t, ns, "run")
	pod := job.Spec.Template.Spec
	g.Expect(envValue(pod.Containers[0].Env, "KFN_REQUEST_BODY_DIR")).To(HaveField("Value", contract.RequestBodyDir))
	var projected *corev1.ProjectedVolumeSource
	for _, v := range pod.Volumes {
		if v.Name == bodyVolume {
			projected = v.Projected
		}
	}
	g.Expect(projected).NotTo(BeNil())
	g.Expect(projected.Sources).To(HaveLen(2))
	g.Expect(projected.Sources[1].Secret.Name).To(Equal("run-body-1"))
	g.Expect(projected.Sources[1].Secret.Items).To(Equal([]corev1.KeyToPath{{Key: contract.BodySecretKey, Path: "001"}}))
	for _, name := range []string{"run-body-0", "run-body-1"} {
		secret := &corev1.Secret{}
		g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, secret)).To(Succeed())
		g.Expect(secret.OwnerReferences).To(ContainElement(HaveField("UID", getExecution(t, ns, "run").UID)), name)
	}
}

// Anyone who can create pods can label one for an Execution: only the pod
// its Job controls is read, so a pod with a forged result changes nothing.
func TestForeignPodWithTheExecutionLabelIsIgnored(t *testing.T) {
	g := NewWithT(t)
	ns, job := runInNewNamespace(t)
	exec := waitForStatus(t, ns, "run", fnv1.PhaseWaiting)
	for name, owners := range map[string][]metav1.OwnerReference{
		"foreign": nil,
		// Controlled by a live object, the Execution, but not by the Job.
		"foreign-owned": {*metav1.NewControllerRef(exec, fnv1.GroupVersion.WithKind("Execution"))},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: job.Spec.Template.Labels, OwnerReferences: owners},
			Spec:       *job.Spec.Template.Spec.DeepCopy(),
		}
		g.Expect(k8s.Create(bg, pod)).To(Succeed())
		setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(200, "FORGED", "", "")))
	}
	g.Consistently(func() fnv1.ExecutionStatus { return getExecution(t, ns, "run").Status }, 2*time.Second, poll).
		Should(And(HaveField("Status", fnv1.PhaseWaiting), HaveField("PodName", "")))

	pod := startPod(t, job)
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(201, "true", "", "")))
	done := waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	g.Expect(done.Status).To(And(HaveField("PodName", pod.Name), HaveField("Response", "true"), HaveField("StatusCode", int32(201))))
}
