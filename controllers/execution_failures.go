package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/runner"
)

// world is what one reconcile observed about an Execution's surroundings.
// The status is derived from it alone, never carried over by guesswork.
type world struct {
	exec *fnv1.Execution
	// fn is the Execution's Function, nil when it does not exist; resolved
	// is what its pod runs, unless unrunnable says why it cannot run.
	fn         *fnv1.Function
	resolved   resolvedFunction
	unrunnable *problem
	job        *batchv1.Job
	pod        *corev1.Pod
	// result is the runner's report, once the function container ended;
	// noResult says why there is none when the container ended without one.
	result   *runner.Result
	noResult *problem
	// secrets are the request's Secrets, observed until the Job is made.
	secrets []requestSecret
	// awaitFunction and awaitSecrets are how much longer a new Execution
	// waits for its Function, and for its missing request Secrets, to be
	// created.
	awaitFunction, awaitSecrets time.Duration
	// now is when the world was observed.
	now time.Time
	// heldBy says which limit keeps the Execution waiting for a slot.
	heldBy string
}

// starting reports whether the Execution has yet to get its Job: none
// exists and none was ever recorded.
func (w world) starting() bool {
	return w.job == nil && w.exec.Status.JobName == ""
}

// canStart reports whether the Job may be made now, failures aside: its
// Function is there and no request Secret is still awaited.
func (w world) canStart() bool {
	return w.starting() && w.fn != nil && w.awaitSecrets == 0
}

// logging reports whether stdout and stderr go into the record.
func (w world) logging() bool {
	return w.fn == nil || w.fn.LoggingEnabled()
}

// timeoutSeconds is the function's timeout, the default when it is gone.
func (w world) timeoutSeconds() int32 {
	if w.fn == nil {
		return fnv1.DefaultTimeoutSeconds
	}
	return w.fn.TimeoutSeconds()
}

// failureChecks are the reasons an Execution fails without a result, in
// order of precedence: the first that finds a problem decides. The checks
// before the Job exists and those after are exclusive, so their relative
// order does not matter; within each group it does: a cause (out of
// memory, an image that cannot be pulled, the Job's deadline) before its
// symptoms (no result, a pod gone or failed, a failed Job).
var failureChecks = []func(world) *problem{
	functionMissing,
	functionDisabled,
	functionNotRunnable,
	secretUnusable,
	jobLost,
	outOfMemory,
	resultMissing,
	imageUnavailable,
	deadlineExceeded,
	podLost,
	podFailed,
	jobFailed,
}

// firstFailure applies failureChecks to the world.
func firstFailure(w world) *problem {
	for _, check := range failureChecks {
		if p := check(w); p != nil {
			return p
		}
	}
	return nil
}

// functionMissing fails an Execution whose Function is still missing after
// the grace period.
func functionMissing(w world) *problem {
	if !w.starting() || w.fn != nil || w.awaitFunction > 0 {
		return nil
	}
	return &problem{fnv1.ReasonFunctionNotFound, fmt.Sprintf("function %q not found in namespace %s", w.exec.Spec.FunctionName, w.exec.Namespace)}
}

func functionDisabled(w world) *problem {
	if !w.starting() || w.fn == nil || w.fn.IsEnabled() || w.exec.Annotations[fnv1.AnnotationAllowDisabled] == "true" {
		return nil
	}
	return &problem{fnv1.ReasonFunctionDisabled, fmt.Sprintf("function %q is disabled", w.fn.Name)}
}

func functionNotRunnable(w world) *problem {
	if !w.starting() || w.fn == nil || w.unrunnable == nil {
		return nil
	}
	return &problem{fnv1.ReasonFunctionNotReady, fmt.Sprintf("function %q cannot run: %s", w.fn.Name, w.unrunnable.Message)}
}

// secretUnusable reports the first Secret of the request the pod cannot
// use: one not made for this Execution (its keys are then not looked at),
// one still missing after the grace period, or one without its key.
func secretUnusable(w world) *problem {
	if !w.starting() {
		return nil
	}
	for _, s := range w.secrets {
		if s.secret == nil {
			if w.awaitSecrets > 0 {
				continue
			}
			return &problem{fnv1.ReasonSecretNotFound, fmt.Sprintf("%s secret %s not found", s.what, s.name)}
		}
		if why := secretRefusal(s.secret, w.exec); why != "" {
			return &problem{fnv1.ReasonSecretNotAllowed, fmt.Sprintf("%s secret %s is not allowed: %s; %s", s.what, s.name, why, secretRule(w.exec))}
		}
		if _, ok := s.secret.Data[s.key]; !ok {
			return &problem{fnv1.ReasonSecretNotFound, fmt.Sprintf("%s secret %s has no %q key", s.what, s.name, s.key)}
		}
	}
	return nil
}

// jobLost fails an Execution whose Job was deleted by someone else before
// the result was recorded: kfn deletes a Job only after that.
func jobLost(w world) *problem {
	switch {
	case w.job == nil && w.exec.Status.JobName != "":
		return &problem{fnv1.ReasonJobLost, fmt.Sprintf("job %s was deleted before the function finished", w.exec.Status.JobName)}
	case w.job != nil && w.job.DeletionTimestamp != nil:
		return &problem{fnv1.ReasonJobLost, fmt.Sprintf("job %s is being deleted before the function finished", w.job.Name)}
	}
	return nil
}

// outOfMemory fails an Execution whose function container the kernel
// killed for going over its memory limit, whether or not the runner could
// still report: the runner is in the same container and may be the process
// killed. It outranks the missing result, which it explains.
func outOfMemory(w world) *problem {
	cs := functionStatus(w.pod)
	if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != oomKilled {
		return nil
	}
	return &problem{fnv1.ReasonOOMKilled, oomMessage(w.pod)}
}

// oomKilled is the container runtime's reason for a container in which the
// kernel's OOM killer killed a process.
const oomKilled = "OOMKilled"

func oomMessage(pod *corev1.Pod) string {
	limit := "its memory limit"
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && c.Name == functionContainer {
			limit = "its memory limit of " + q.String()
		}
	}
	return fmt.Sprintf("the function ran out of memory: it went over %s and was killed (OOMKilled); raise the function's resources.limits.memory if it needs more", limit)
}

func podLost(w world) *problem {
	if w.job == nil || w.pod != nil || w.exec.Status.PodName == "" {
		return nil
	}
	return &problem{fnv1.ReasonPodLost, fmt.Sprintf("pod %s disappeared before the function finished (deleted or evicted)", w.exec.Status.PodName)}
}

// resultMissing fails an Execution whose function container ended without
// a result the runner wrote; it outranks the pod's state, which only says
// how the container ended.
func resultMissing(w world) *problem {
	return w.noResult
}

// imageWaits are the container waiting reasons of an image that cannot be
// had. Each execution is one attempt, never retried behind the caller's
// back, and the kubelet's back-off keys on the pod: waiting would only
// retry the pull after 10 s, 20 s, 40 s… until the Job's deadline. So the
// first failed pull fails the execution (docs/reliability.md), unless the
// pull was only throttled.
var imageWaits = map[string]bool{
	"ErrImagePull":              true,
	"ImagePullBackOff":          true,
	"InvalidImageName":          true,
	"ErrImageNeverPull":         true,
	"RegistryUnavailable":       true,
	"SignatureValidationFailed": true,
	"ImageInspectError":         true,
}

// throttledPull tells the pull errors that say "not now" rather than "not
// at all": the kubelet's own pull rate limit (registryPullQPS) and a
// registry's rate limit. A burst of executions of a new image meets them;
// the kubelet's next attempt after its back-off usually succeeds, so such
// an execution keeps waiting, bounded by the Job's deadline. The kubelet
// repeats the last pull error in the back-off message.
func throttledPull(message string) bool {
	m := strings.ToLower(message)
	for _, s := range []string{"qps exceeded", "toomanyrequests", "too many requests", "rate limit"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// imageUnavailable fails an Execution at once when an image of its pod
// cannot be pulled, instead of at the Job's deadline.
func imageUnavailable(w world) *problem {
	for _, cs := range allContainerStatuses(w.pod) {
		wait := cs.State.Waiting
		if wait == nil || !imageWaits[wait.Reason] || throttledPull(wait.Message) {
			continue
		}
		image := "its image"
		if name := containerImage(w.pod, cs); name != "" {
			image += " " + name
		}
		return &problem{fnv1.ReasonImagePullFailed, fmt.Sprintf("container %s cannot start: %s cannot be pulled: %s",
			cs.Name, image, strings.TrimSuffix(wait.Reason+": "+wait.Message, ": "))}
	}
	return nil
}

// containerImage is the image the pod asks for the container, which the
// status may spell otherwise (with a registry or a digest), or not at all.
func containerImage(pod *corev1.Pod, cs corev1.ContainerStatus) string {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == cs.Name {
			return c.Image
		}
	}
	return cs.Image
}

// deadlineExceeded fails an Execution whose Job ran out of time: the Job
// controller stops the pod once the Job's activeDeadlineSeconds (the
// timeout plus the startup grace, counted from the Job's start) pass. The
// runner stops the function at its timeout, so this is a pod that started
// too late or never: pending unscheduled in a full node, pulling, or
// waiting for a volume. It outranks the pod's disappearance, which it
// causes, and, since the Job controller deletes the pod before it writes
// its condition, a pod killed once the deadline has passed is taken for
// the deadline without waiting for the condition. A function still
// running is left to report first.
func deadlineExceeded(w world) *problem {
	if !jobDeadlineHit(w.job) && !(podKilled(w) && deadlinePassed(w.job, w.now)) {
		return nil
	}
	if functionRunning(w.pod) != nil {
		// Started late: the pod being stopped sends the runner SIGTERM,
		// and its report, with the function's output, comes in a moment.
		return nil
	}
	return &problem{fnv1.ReasonTimedOut, deadlineMessage(w)}
}

// jobDeadlineHit reports whether the Job controller failed the Job for its
// deadline: the interim FailureTarget condition, then Failed.
func jobDeadlineHit(job *batchv1.Job) bool {
	if job == nil {
		return false
	}
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) && c.Status == corev1.ConditionTrue &&
			c.Reason == batchv1.JobReasonDeadlineExceeded {
			return true
		}
	}
	return false
}

// deadlinePassed reports whether the Job's deadline is over at now, by the
// Job's start time (whole seconds, so never late).
func deadlinePassed(job *batchv1.Job, now time.Time) bool {
	if job == nil || job.Status.StartTime == nil || job.Spec.ActiveDeadlineSeconds == nil || now.IsZero() {
		return false
	}
	return !now.Before(job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second))
}

// podKilled reports whether the Execution's pod is gone, being deleted or
// failed.
func podKilled(w world) bool {
	if w.pod == nil {
		return w.exec.Status.PodName != ""
	}
	return w.pod.DeletionTimestamp != nil || w.pod.Status.Phase == corev1.PodFailed
}

// deadlineMessage says that the execution timed out, and whether the
// function never started (with what its pod waited for) or started late.
func deadlineMessage(w world) string {
	msg := fmt.Sprintf("Execution timed out after %ds.", w.timeoutSeconds())
	deadline := "the job's deadline"
	if w.job != nil && w.job.Spec.ActiveDeadlineSeconds != nil {
		deadline = fmt.Sprintf("the job's deadline (%ds: the timeout plus the time allowed to start)", *w.job.Spec.ActiveDeadlineSeconds)
	}
	if started(w) {
		return msg + " The function started late and was stopped at " + deadline + "."
	}
	msg += " The function never started: its pod was still waiting at " + deadline
	if why := pendingReason(w); why != "" {
		return msg + ": " + why
	}
	return msg + "."
}

// started reports whether the function container ever ran.
func started(w world) bool {
	if w.exec.Status.StartTime != nil || w.result != nil {
		return true
	}
	cs := functionStatus(w.pod)
	return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil)
}

// pendingReason is what the pod waits for: from the pod, or, once the pod
// is gone, the reason the Execution recorded while it waited.
func pendingReason(w world) string {
	if why := waitingReason(w.pod); why != "" {
		return why
	}
	st := w.exec.Status
	if st.Status == fnv1.PhaseWaiting && st.Reason == fnv1.ReasonWaiting && !slices.Contains(ordinaryWaits, st.Message) {
		return st.Message
	}
	return ""
}

// podFailed fails an Execution whose pod failed without the runner
// reporting (evicted, killed, lost).
func podFailed(w world) *problem {
	if w.pod == nil || w.pod.Status.Phase != corev1.PodFailed {
		return nil
	}
	msg := fmt.Sprintf("pod %s failed before the function reported a result", w.pod.Name)
	if w.pod.Status.Reason != "" {
		msg += ": " + w.pod.Status.Reason
	}
	if w.pod.Status.Message != "" {
		msg += ": " + w.pod.Status.Message
	}
	return &problem{fnv1.ReasonPodFailed, msg}
}

// jobFailed reads a Job that failed for another reason than its deadline
// (deadlineExceeded comes first). Only the final Failed condition counts:
// the interim FailureTarget comes while the pod is still stopping, when a
// pod deleted mid-run (which fails the Job at once, backoffLimit 0) has
// yet to report why it ended.
func jobFailed(w world) *problem {
	if w.job == nil {
		return nil
	}
	for _, c := range w.job.Status.Conditions {
		if c.Type != batchv1.JobFailed || c.Status != corev1.ConditionTrue {
			continue
		}
		return &problem{fnv1.ReasonPodLost, fmt.Sprintf("job %s failed before the function reported a result: %s: %s", w.job.Name, c.Reason, c.Message)}
	}
	return nil
}
