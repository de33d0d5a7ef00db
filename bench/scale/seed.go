package main

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// seed writes records [from, to) of the function: create, then the status
// of a finished run. The manager is at 0, so nothing else writes them.
func (b *bench) seed(ctx context.Context, ns string, fn *fnv1.Function, from, to int) error {
	base := time.Now().UnixMicro()
	owner := metav1.OwnerReference{APIVersion: fnv1.GroupVersion.String(), Kind: "Function", Name: fn.Name, UID: fn.UID}
	retry := func(ctx context.Context, f func() error) error {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = f(); err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) {
				return err
			}
			select {
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	return parallel(ctx, b.c.seedWorkers, to-from, func(ctx context.Context, k int) error {
		i := from + k
		name := fmt.Sprintf("%013x%07x", base, i) // like the facade's IDs: 20 hex digits, ordered
		e := &fnv1.Execution{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: fnv1.ExecutionSpec{FunctionName: fn.Name, Trigger: fnv1.TriggerHTTP, Async: true,
				Method: "POST", Path: "/", Body: fmt.Sprintf(`{"n":%d}`, i)},
		}
		err := retry(ctx, func() error { return b.env.Client.Create(ctx, e) })
		if apierrors.IsAlreadyExists(err) { // a retried create that had gone through
			err = b.env.Client.Get(ctx, client.ObjectKeyFromObject(e), e)
		}
		if err != nil {
			return err
		}
		e.Status = finishedStatus(name, i, time.Now())
		return retry(ctx, func() error { return b.env.Client.Status().Update(ctx, e) })
	})
}

// finishedStatus is the record of a finished run as the operator writes it:
// every 10th failed (500), the others completed (200).
func finishedStatus(name string, i int, now time.Time) fnv1.ExecutionStatus {
	dur := 0.05 + float64(i%97)/1000
	start := metav1.NewTime(now.Add(-time.Duration(dur * float64(time.Second))).Truncate(time.Second))
	end := metav1.NewTime(now.Truncate(time.Second))
	s := fnv1.ExecutionStatus{
		ObservedGeneration: 1,
		Status:             fnv1.PhaseCompleted,
		StatusCode:         200,
		Response:           fmt.Sprintf(`{"ok":true,"n":%d}`, i),
		ResponseHeaders:    map[string]string{"content-type": "application/json"},
		Stdout:             fmt.Sprintf("run %d: hello from the bench function\n", i),
		Duration:           dur,
		StartTime:          &start,
		CompletionTime:     &end,
		JobName:            name,
		PodName:            name + "-x7k2p",
		ExitCode:           ptr.To[int32](0),
		Reason:             fnv1.ReasonCompleted,
		Message:            "the function completed",
	}
	cond := metav1.Condition{Type: fnv1.ExecutionSucceeded, Status: metav1.ConditionTrue, ObservedGeneration: 1,
		LastTransitionTime: end, Reason: fnv1.ReasonCompleted, Message: "the function completed"}
	if i%10 == 9 {
		s.Status, s.StatusCode, s.ExitCode = fnv1.PhaseFailed, 500, ptr.To[int32](1)
		s.Response = ""
		s.Stderr = fmt.Sprintf("run %d: error: bench failure\n", i)
		s.Reason, s.Message = fnv1.ReasonFunctionFailed, "the function exited with code 1"
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, fnv1.ReasonFunctionFailed, s.Message
	}
	s.Conditions = []metav1.Condition{cond}
	return s
}
