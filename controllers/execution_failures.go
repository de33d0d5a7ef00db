package controllers

import (
	"fmt"
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
// order does not matter; within each group it does.
var failureChecks = []func(world) *problem{
	functionMissing,
	functionDisabled,
	functionNotRunnable,
	secretUnusable,
	jobLost,
	podLost,
	resultMissing,
	unrecoverableWait,
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
	if !w.starting() || w.fn == nil || w.fn.IsEnabled() {
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

func jobLost(w world) *problem {
	if w.job != nil || w.exec.Status.JobName == "" {
		return nil
	}
	return &problem{fnv1.ReasonJobLost, fmt.Sprintf("job %s was deleted before the function finished", w.exec.Status.JobName)}
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

// unrecoverableWaits are container waiting reasons that no amount of
// waiting fixes, so the execution fails at once instead of at its deadline.
var unrecoverableWaits = map[string]bool{"InvalidImageName": true, "ErrImageNeverPull": true}

func unrecoverableWait(w world) *problem {
	for _, cs := range allContainerStatuses(w.pod) {
		if wait := cs.State.Waiting; wait != nil && unrecoverableWaits[wait.Reason] {
			return &problem{fnv1.ReasonPodFailed, fmt.Sprintf("container %s cannot start: %s: %s", cs.Name, wait.Reason, wait.Message)}
		}
	}
	return nil
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

// jobFailed reads a failed Job: its deadline passed (the pod may never
// have started), or it failed for another reason.
func jobFailed(w world) *problem {
	if w.job == nil {
		return nil
	}
	for _, c := range w.job.Status.Conditions {
		if c.Type != batchv1.JobFailed || c.Status != corev1.ConditionTrue {
			continue
		}
		if c.Reason == batchv1.JobReasonDeadlineExceeded {
			msg := fmt.Sprintf("Execution timed out after %ds.", w.timeoutSeconds())
			if never := waitingReason(w.pod); never != "" {
				msg += " The function never started: " + never
			}
			return &problem{fnv1.ReasonTimedOut, msg}
		}
		return &problem{fnv1.ReasonPodLost, fmt.Sprintf("job %s failed before the function reported a result: %s: %s", w.job.Name, c.Reason, c.Message)}
	}
	return nil
}
