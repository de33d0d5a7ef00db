package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/runner"
)

// logResult reads the full result from the end of the container log: the
// line the termination message's header vouches for, and no other.
func (r *ExecutionReconciler) logResult(ctx context.Context, pod *corev1.Pod, header *runner.Result) (*runner.Result, *problem, error) {
	if header.LogLineBytes > contract.MaxResultLineBytes {
		return nil, &problem{fnv1.ReasonNoResult, fmt.Sprintf("the result in the log of pod %s is %d bytes, over the %d the operator reads",
			pod.Name, header.LogLineBytes, contract.MaxResultLineBytes)}, nil
	}
	raw, err := r.Logs.ContainerLog(ctx, pod.Namespace, pod.Name, functionContainer)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the result from the log of pod %s: %w", pod.Name, err)
	}
	full, err := runner.ParseLog(raw, header)
	if err != nil {
		return nil, &problem{fnv1.ReasonNoResult, fmt.Sprintf("the runner's log in pod %s holds no result: %v", pod.Name, err)}, nil
	}
	return full, nil, nil
}

// untrusted says why res cannot be the runner's report of the container
// that ended as term, or nil if it can. The user's code can write the
// termination message too, but the runner overwrites it, and exits with the
// result's exit code only once it has; a message left in its place does not
// match how the container ended. Validation keeps out what the API server
// would refuse, which would leave the Execution unfinished.
func untrusted(res *runner.Result, pod *corev1.Pod, term *corev1.ContainerStateTerminated) *problem {
	if err := res.Validate(); err != nil {
		return &problem{fnv1.ReasonNoResult, fmt.Sprintf("pod %s reported a result the runner does not write: %v", pod.Name, err)}
	}
	if int32(res.ExitCode) != term.ExitCode {
		return &problem{fnv1.ReasonNoResult, fmt.Sprintf("pod %s reported exit code %d, but its function container ended with %d: the result is not the runner's",
			pod.Name, res.ExitCode, term.ExitCode)}
	}
	return nil
}
