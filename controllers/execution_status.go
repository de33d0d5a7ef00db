package controllers

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/runner"
)

// desiredStatus rebuilds the Execution status from the world and the
// failure the rules found in it: the runner's result wins, then a failure,
// then what the function container is doing.
func desiredStatus(w world, failure *problem, now time.Time, maxRecordBytes int) fnv1.ExecutionStatus {
	exec := w.exec
	st := fnv1.ExecutionStatus{
		ObservedGeneration: exec.Generation,
		Conditions:         append([]metav1.Condition(nil), exec.Status.Conditions...),
		StartTime:          exec.Status.StartTime,
		JobName:            exec.Status.JobName,
		PodName:            exec.Status.PodName,
	}
	if w.job != nil {
		st.JobName = w.job.Name
	}
	if w.pod != nil {
		st.PodName = w.pod.Name
	}
	running := functionRunning(w.pod)
	switch {
	case w.result != nil:
		applyResult(&st, w.result, endedBy(w), w.logging(), recordBudget(exec, maxRecordBytes))
	case failure != nil:
		fail(&st, failure, now)
	case running != nil:
		st.Status = fnv1.PhaseProcessing
		st.Reason = fnv1.ReasonProcessing
		st.Message = "the function is running"
		st.StartTime = &running.StartedAt
	case w.heldBy != "":
		st.Status = fnv1.PhaseWaiting
		st.Reason = fnv1.ReasonWaitingForSlot
		st.Message = w.heldBy
	default:
		st.Status = fnv1.PhaseWaiting
		st.Reason = fnv1.ReasonWaiting
		st.Message = waitingMessage(w)
	}
	setSucceeded(&st, exec.Generation)
	return st
}

// scheduledStatus is the status of a delayed Execution that is not due yet.
func scheduledStatus(exec *fnv1.Execution) fnv1.ExecutionStatus {
	st := fnv1.ExecutionStatus{
		ObservedGeneration: exec.Generation,
		Conditions:         append([]metav1.Condition(nil), exec.Status.Conditions...),
		Status:             fnv1.PhaseScheduled,
		Reason:             fnv1.ReasonScheduled,
		Message:            "the execution runs at " + exec.Spec.ScheduledAt.UTC().Format(time.RFC3339),
	}
	setSucceeded(&st, exec.Generation)
	return st
}

// applyResult records the runner's result, its outputs and response
// headers within maxRecordBytes of JSON. ended, if not nil, is what the
// cluster did to the function, which says better than its exit code why a
// failed run failed; its message is added to stderr.
func applyResult(st *fnv1.ExecutionStatus, res *runner.Result, ended *problem, logging bool, maxRecordBytes int) {
	st.Status = fnv1.PhaseCompleted
	st.Reason = fnv1.ReasonCompleted
	st.Message = fmt.Sprintf("the function answered %d", res.StatusCode)
	stdout, stderr := res.Stdout, res.Stderr
	if !logging {
		stdout, stderr = "", ""
	}
	if res.Failed() {
		st.Status = fnv1.PhaseFailed
		st.Reason = fnv1.ReasonFunctionFailed
		st.Message = fmt.Sprintf("the function answered %d (exit code %d%s)", res.StatusCode, res.ExitCode, exitMeaning(res.ExitCode))
		switch {
		case res.TimedOut:
			st.Reason = fnv1.ReasonTimedOut
			st.Message = "the function ran out of time"
		case ended != nil:
			st.Reason, st.Message = ended.Reason, ended.Message
			stderr = appendLine(stderr, ended.Message)
		}
	}
	st.StatusCode = int32(res.StatusCode)
	st.ResponseHeaders = res.ResponseHeaders
	st.ExitCode = ptr.To(int32(res.ExitCode))
	st.Duration = res.Duration
	st.StartTime = ptr.To(metav1.NewTime(res.StartedAt))
	st.CompletionTime = ptr.To(metav1.NewTime(res.FinishedAt))
	rec := fitRecord(res.Response, stdout, stderr, maxRecordBytes-headersJSONLen(res.ResponseHeaders))
	st.Response, st.Stdout, st.Stderr = rec.response, rec.stdout, rec.stderr
	st.Truncated = mergeTruncated(res.Truncated, rec.truncated, logging)
}

// exitMeaning explains the exit codes a user cannot be expected to know,
// after the code itself: the shell's, and 128+n for a process killed by
// signal n. 124 (the runner's timeout) has a message of its own.
func exitMeaning(code int) string {
	switch {
	case code == 126:
		return ": the command is not executable"
	case code == 127:
		return ": a command was not found or could not be started"
	case code == 128+int(syscall.SIGKILL):
		return ": killed by SIGKILL"
	case code == 128+int(syscall.SIGTERM):
		return ": stopped by SIGTERM"
	case code > 128 && code < 128+65:
		return fmt.Sprintf(": killed by signal %d", code-128)
	}
	return ""
}

// endedBy says what the cluster did to a function that reported a result,
// if anything: its memory ran out, the Job's deadline passed, or its Job
// or pod was deleted while it ran (the runner reports when it is stopped
// by SIGTERM).
func endedBy(w world) *problem {
	signalled := w.result.ExitCode > 128
	switch {
	case w.result.TimedOut || !w.result.Failed():
		return nil
	case outOfMemory(w) != nil:
		return outOfMemory(w)
	case signalled && jobDeadlineHit(w.job), signalled && podKilled(w) && deadlinePassed(w.job, w.now):
		return &problem{fnv1.ReasonTimedOut, deadlineMessage(w)}
	case signalled && w.job != nil && w.job.DeletionTimestamp != nil:
		return &problem{fnv1.ReasonJobLost, fmt.Sprintf("job %s was deleted while the function ran: the function was stopped (exit code %d%s)",
			w.job.Name, w.result.ExitCode, exitMeaning(w.result.ExitCode))}
	case signalled && w.pod != nil && w.pod.DeletionTimestamp != nil:
		return &problem{fnv1.ReasonPodLost, fmt.Sprintf("pod %s was deleted (by hand, an eviction or a node drain) while the function ran: the function was stopped (exit code %d%s)",
			w.pod.Name, w.result.ExitCode, exitMeaning(w.result.ExitCode))}
	}
	return nil
}

// appendLine adds line to the end of text, on a line of its own.
func appendLine(text, line string) string {
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + line + "\n"
}

// mergeTruncated lists, once each and in record order, the outputs the
// runner cut and those the record cut. Logs the record drops are not listed.
func mergeTruncated(byRunner, byRecord []string, logging bool) []string {
	var out []string
	for _, name := range []string{contract.OutputResponse, contract.OutputStdout, contract.OutputStderr} {
		kept := name == contract.OutputResponse || logging
		if slices.Contains(byRecord, name) || kept && slices.Contains(byRunner, name) {
			out = append(out, name)
		}
	}
	return out
}

// fail records a failure that left no result from the function: like
// Appwrite's executor errors it reads as status code 500 with the reason in stderr.
func fail(st *fnv1.ExecutionStatus, p *problem, now time.Time) {
	st.Status = fnv1.PhaseFailed
	st.Reason = p.Reason
	st.Message = p.Message
	st.StatusCode = 500
	st.Stderr = p.Message
	st.CompletionTime = ptr.To(metav1.NewTime(now))
	if st.StartTime != nil {
		st.Duration = now.Sub(st.StartTime.Time).Seconds()
	}
}

func setSucceeded(st *fnv1.ExecutionStatus, generation int64) {
	cond := metav1.Condition{
		Type:               fnv1.ExecutionSucceeded,
		Status:             metav1.ConditionUnknown,
		Reason:             st.Reason,
		Message:            st.Message,
		ObservedGeneration: generation,
	}
	switch st.Status {
	case fnv1.PhaseCompleted:
		cond.Status = metav1.ConditionTrue
	case fnv1.PhaseFailed:
		cond.Status = metav1.ConditionFalse
	}
	meta.SetStatusCondition(&st.Conditions, cond)
}

// functionStatus returns the status of the container running the user's code.
func functionStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	if pod == nil {
		return nil
	}
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == functionContainer {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func functionRunning(pod *corev1.Pod) *corev1.ContainerStateRunning {
	if cs := functionStatus(pod); cs != nil {
		return cs.State.Running
	}
	return nil
}

// waitingReason says why the function has not started, if its pod
// reports a reason beyond the ordinary start-up: a container waiting (for
// its image, say) or the pod not scheduled (no node with room for it).
func waitingReason(pod *corev1.Pod) string {
	for _, cs := range allContainerStatuses(pod) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			return strings.TrimSuffix(w.Reason+": "+w.Message, ": ")
		}
	}
	if pod == nil {
		return ""
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return strings.TrimSuffix(c.Reason+": "+c.Message, ": ")
		}
	}
	return ""
}

// allContainerStatuses are the init containers' statuses, then the containers'.
func allContainerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	if pod == nil {
		return nil
	}
	return append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
}

// The waiting messages that give no reason to wait beyond the ordinary.
const (
	waitingForFunction = "waiting for the function to be created"
	waitingForSecrets  = "waiting for the request's secrets to be created"
	creatingJob        = "creating the job"
	waitingForStart    = "waiting for the function to start"
)

var ordinaryWaits = []string{waitingForFunction, waitingForSecrets, creatingJob, waitingForStart}

func waitingMessage(w world) string {
	reason := waitingReason(w.pod)
	switch {
	case w.awaitFunction > 0:
		return waitingForFunction
	case w.awaitSecrets > 0:
		return waitingForSecrets
	case w.job == nil:
		return creatingJob
	case reason != "":
		return reason
	default:
		// One message from Job to start, so the pod's appearance needs no
		// status write of its own.
		return waitingForStart
	}
}
