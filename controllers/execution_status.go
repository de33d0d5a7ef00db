package controllers

import (
	"fmt"
	"slices"
	"strings"
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
		applyResult(&st, w.result, w.logging(), recordBudget(exec, maxRecordBytes))
	case failure != nil:
		fail(&st, failure, now)
	case running != nil:
		st.Status = fnv1.PhaseProcessing
		st.Reason = fnv1.ReasonProcessing
		st.Message = "the function is running"
		st.StartTime = &running.StartedAt
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
// headers within maxRecordBytes of JSON.
func applyResult(st *fnv1.ExecutionStatus, res *runner.Result, logging bool, maxRecordBytes int) {
	st.Status = fnv1.PhaseCompleted
	st.Reason = fnv1.ReasonCompleted
	st.Message = fmt.Sprintf("the function answered %d", res.StatusCode)
	if res.Failed() {
		st.Status = fnv1.PhaseFailed
		st.Reason = fnv1.ReasonFunctionFailed
		st.Message = fmt.Sprintf("the function answered %d (exit code %d)", res.StatusCode, res.ExitCode)
		if res.TimedOut {
			st.Reason = fnv1.ReasonTimedOut
			st.Message = "the function ran out of time"
		}
	}
	st.StatusCode = int32(res.StatusCode)
	st.ResponseHeaders = res.ResponseHeaders
	st.ExitCode = ptr.To(int32(res.ExitCode))
	st.Duration = res.Duration
	st.StartTime = ptr.To(metav1.NewTime(res.StartedAt))
	st.CompletionTime = ptr.To(metav1.NewTime(res.FinishedAt))
	stdout, stderr := res.Stdout, res.Stderr
	if !logging {
		stdout, stderr = "", ""
	}
	rec := fitRecord(res.Response, stdout, stderr, maxRecordBytes-headersJSONLen(res.ResponseHeaders))
	st.Response, st.Stdout, st.Stderr = rec.response, rec.stdout, rec.stderr
	st.Truncated = mergeTruncated(res.Truncated, rec.truncated, logging)
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

// waitingReason says why the pod's containers have not started, if a
// container reports a reason beyond the ordinary start-up.
func waitingReason(pod *corev1.Pod) string {
	for _, cs := range allContainerStatuses(pod) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			return strings.TrimSuffix(w.Reason+": "+w.Message, ": ")
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

func waitingMessage(w world) string {
	reason := waitingReason(w.pod)
	switch {
	case w.awaitFunction > 0:
		return "waiting for the function to be created"
	case w.awaitSecrets > 0:
		return "waiting for the request's secrets to be created"
	case w.job == nil:
		return "creating the job"
	case reason != "":
		return reason
	default:
		// One message from Job to start, so the pod's appearance needs no
		// status write of its own.
		return "waiting for the function to start"
	}
}
