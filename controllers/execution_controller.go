package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

// ExecutionReconciler runs each Execution as one Job and records the
// function's result in the Execution's status.
type ExecutionReconciler struct {
	client.Client
	// APIReader reads around the cache, to tell "not cached yet" from "gone".
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Clock     clock.PassiveClock
	Logs      LogReader
	Runtimes  RuntimeCatalog
	Jobs      JobOptions
	// MaxRecordBytes bounds response, stdout and stderr together in a status.
	MaxRecordBytes int
}

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves an Execution through its phases: make sure it can run,
// run it in a Job, read the result, then clean the Job up.
func (r *ExecutionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	exec := &fnv1.Execution{}
	if err := r.Get(ctx, req.NamespacedName, exec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if exec.Status.Status.IsFinished() {
		return ctrl.Result{}, r.deleteJob(ctx, exec)
	}
	if wait := r.untilDue(exec); wait > 0 {
		// Delayed (scheduledAt): owned by the Function at once, so deleting
		// the Function cancels it, and "scheduled" until it is due.
		if _, err := r.function(ctx, exec); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: wait}, r.writeStatus(ctx, exec, scheduledStatus(exec))
	}

	w, err := r.observe(ctx, exec)
	if err != nil {
		return ctrl.Result{}, err
	}
	if w.job == nil && w.failure == nil && w.fn != nil {
		if w.job, err = r.createJob(ctx, exec, w.fn); err != nil {
			return ctrl.Result{}, err
		}
	}

	status := desiredStatus(exec, w, r.Clock.Now(), r.MaxRecordBytes)
	if err := r.writeStatus(ctx, exec, status); err != nil {
		return ctrl.Result{}, err
	}
	if status.Status.IsFinished() {
		// The record is durable now; the Job and its pod are no longer needed.
		return ctrl.Result{}, r.deleteJob(ctx, exec)
	}
	// A Function that appears wakes its Executions; the requeue ends the wait.
	return ctrl.Result{RequeueAfter: w.awaitFunction}, nil
}

// functionGrace is how long a new Execution waits for its Function to
// appear before failing: `kubectl apply -f` of a folder creates objects in
// file-name order, so an Execution may come a moment before its Function.
const functionGrace = 10 * time.Second

// untilDue is how long a delayed Execution still waits; 0 once it is due
// (or it has no scheduledAt, or its Job already exists).
func (r *ExecutionReconciler) untilDue(exec *fnv1.Execution) time.Duration {
	if exec.Spec.ScheduledAt == nil || exec.Status.JobName != "" {
		return 0
	}
	return max(exec.Spec.ScheduledAt.Sub(r.Clock.Now()), 0)
}

// observe gathers the Function, Job, pod and result of an Execution.
func (r *ExecutionReconciler) observe(ctx context.Context, exec *fnv1.Execution) (world, error) {
	w := world{logging: true, timeout: 15}
	fn, err := r.function(ctx, exec)
	if err != nil {
		return w, err
	}
	if fn != nil {
		w.fn, w.logging, w.timeout = fn, fn.LoggingEnabled(), fn.Spec.Timeout
	}

	w.job, err = r.job(ctx, exec)
	if err != nil {
		return w, err
	}
	if w.job == nil {
		if exec.Status.JobName != "" {
			w.failure = &problem{fnv1.ReasonJobLost, fmt.Sprintf("job %s was deleted before the function finished", exec.Status.JobName)}
			return w, nil
		}
		if fn == nil {
			// Capped: an operator clock behind the API server's must not stretch the wait.
			if left := functionGrace - r.Clock.Since(exec.CreationTimestamp.Time); left > 0 {
				w.awaitFunction = min(left, functionGrace)
				return w, nil
			}
		}
		w.failure, err = r.readiness(ctx, exec, fn)
		return w, err
	}

	w.pod, err = r.pod(ctx, exec)
	if err != nil {
		return w, err
	}
	if w.pod == nil {
		if exec.Status.PodName != "" {
			w.failure = &problem{fnv1.ReasonPodLost, fmt.Sprintf("pod %s disappeared before the function finished (deleted or evicted)", exec.Status.PodName)}
		}
		return w, nil
	}
	w.failure = unrecoverableWait(w.pod)
	if cs := functionStatus(w.pod); cs != nil && cs.State.Terminated != nil {
		w.result, w.failure, err = r.result(ctx, w.pod, cs.State.Terminated)
	}
	return w, err
}

// function returns the Execution's Function, or nil if it does not exist,
// and makes the Function the Execution's owner so deleting it cascades.
func (r *ExecutionReconciler) function(ctx context.Context, exec *fnv1.Execution) (*fnv1.Function, error) {
	fn := &fnv1.Function{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: exec.Spec.FunctionName}
	if err := r.getLive(ctx, key, fn); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if owned, _ := controllerutil.HasOwnerReference(exec.OwnerReferences, fn, r.Scheme); !owned {
		patch := client.MergeFrom(exec.DeepCopy())
		if err := controllerutil.SetOwnerReference(fn, exec, r.Scheme); err != nil {
			return nil, err
		}
		if err := r.Patch(ctx, exec, patch); err != nil {
			return nil, fmt.Errorf("owning execution by its function: %w", err)
		}
	}
	return fn, nil
}

// readiness says why an Execution cannot start, or nil if it can.
func (r *ExecutionReconciler) readiness(ctx context.Context, exec *fnv1.Execution, fn *fnv1.Function) (*problem, error) {
	if fn == nil {
		return &problem{fnv1.ReasonFunctionNotFound, fmt.Sprintf("function %q not found in namespace %s", exec.Spec.FunctionName, exec.Namespace)}, nil
	}
	if !fn.IsEnabled() {
		return &problem{fnv1.ReasonFunctionDisabled, fmt.Sprintf("function %q is disabled", fn.Name)}, nil
	}
	if _, p := resolveFunction(fn, r.Runtimes); p != nil {
		return &problem{fnv1.ReasonFunctionNotReady, fmt.Sprintf("function %q cannot run: %s", fn.Name, p.Message)}, nil
	}
	if exec.Spec.JWTSecretName != "" {
		if p, err := r.adoptSecret(ctx, exec, "JWT", exec.Spec.JWTSecretName, jwtSecretKey); p != nil || err != nil {
			return p, err
		}
	}
	for _, name := range exec.Spec.BodySecrets {
		if p, err := r.adoptSecret(ctx, exec, "body", name, bodySecretKey); p != nil || err != nil {
			return p, err
		}
	}
	return nil, nil
}

// adoptSecret makes the Execution own a Secret of its request (the
// caller's JWT, a part of a large body), so it is deleted with the record.
func (r *ExecutionReconciler) adoptSecret(ctx context.Context, exec *fnv1.Execution, what, name, dataKey string) (*problem, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: name}
	if err := r.APIReader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return &problem{fnv1.ReasonSecretNotFound, fmt.Sprintf("%s secret %s not found", what, key.Name)}, nil
		}
		return nil, err
	}
	if _, ok := secret.Data[dataKey]; !ok {
		return &problem{fnv1.ReasonSecretNotFound, fmt.Sprintf("%s secret %s has no %q key", what, key.Name, dataKey)}, nil
	}
	if owned, _ := controllerutil.HasOwnerReference(secret.OwnerReferences, exec, r.Scheme); owned {
		return nil, nil
	}
	patch := client.MergeFrom(secret.DeepCopy())
	if err := controllerutil.SetOwnerReference(exec, secret, r.Scheme); err != nil {
		return nil, err
	}
	return nil, r.Patch(ctx, secret, patch)
}

func (r *ExecutionReconciler) job(ctx context.Context, exec *fnv1.Execution) (*batchv1.Job, error) {
	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: jobName(exec.Name)}
	if err := r.getLive(ctx, key, job); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(job, exec) {
		return nil, fmt.Errorf("job %s exists but does not belong to execution %s", job.Name, exec.Name)
	}
	return job, nil
}

// pod returns the Execution's pod. With backoffLimit 0 there is at most one.
func (r *ExecutionReconciler) pod(ctx context.Context, exec *fnv1.Execution) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(exec.Namespace), client.MatchingLabels{labelExecution: exec.Name}); err != nil {
		return nil, err
	}
	if len(pods.Items) > 0 {
		return &pods.Items[0], nil
	}
	if exec.Status.PodName == "" {
		return nil, nil
	}
	pod := &corev1.Pod{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: exec.Namespace, Name: exec.Status.PodName}, pod)
	if err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return pod, nil
}

// result reads the runner's report from the termination message, or from
// the container log when it did not fit there.
func (r *ExecutionReconciler) result(ctx context.Context, pod *corev1.Pod, term *corev1.ContainerStateTerminated) (*runner.Result, *problem, error) {
	res, err := runner.ParseTerminationMessage(term.Message)
	if err != nil {
		msg := fmt.Sprintf("the function container ended (%s, exit code %d) without a result from the runner", term.Reason, term.ExitCode)
		if pod.Status.Reason != "" {
			msg += fmt.Sprintf("; pod %s: %s", pod.Status.Reason, pod.Status.Message)
		}
		return nil, &problem{fnv1.ReasonNoResult, fmt.Sprintf("%s: %v", msg, err)}, nil
	}
	if !res.InLog {
		return res, nil, nil
	}
	raw, err := r.Logs.ContainerLog(ctx, pod.Namespace, pod.Name, functionContainer)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the result from the log of pod %s: %w", pod.Name, err)
	}
	full, err := runner.ParseLog(raw)
	if err != nil {
		return nil, &problem{fnv1.ReasonNoResult, fmt.Sprintf("the runner's log in pod %s holds no result: %v", pod.Name, err)}, nil
	}
	return full, nil, nil
}

func (r *ExecutionReconciler) createJob(ctx context.Context, exec *fnv1.Execution, fn *fnv1.Function) (*batchv1.Job, error) {
	rf, p := resolveFunction(fn, r.Runtimes)
	if p != nil {
		return nil, p
	}
	job := buildJob(exec, fn, rf, r.Jobs)
	if err := controllerutil.SetControllerReference(exec, job, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Recorder.Eventf(exec, nil, corev1.EventTypeWarning, "JobCreateFailed", "CreateJob", "creating job %s: %v", job.Name, err)
		return nil, err
	}
	r.Recorder.Eventf(exec, job, corev1.EventTypeNormal, "JobCreated", "CreateJob", "created job %s", job.Name)
	return job, nil
}

func (r *ExecutionReconciler) writeStatus(ctx context.Context, exec *fnv1.Execution, status fnv1.ExecutionStatus) error {
	if equality.Semantic.DeepEqual(exec.Status, status) {
		return nil
	}
	before := exec.Status.Status
	exec.Status = status
	if err := r.Status().Update(ctx, exec); err != nil {
		return err
	}
	if before != status.Status {
		r.recordTransition(exec)
	}
	return nil
}

func (r *ExecutionReconciler) recordTransition(exec *fnv1.Execution) {
	st := exec.Status
	switch st.Status {
	case fnv1.PhaseScheduled:
		r.Recorder.Eventf(exec, nil, corev1.EventTypeNormal, st.Reason, "Schedule", "%s", st.Message)
	case fnv1.PhaseProcessing:
		r.Recorder.Eventf(exec, nil, corev1.EventTypeNormal, "Started", "Run", "the function started in pod %s", st.PodName)
	case fnv1.PhaseCompleted:
		observeFinished(&st)
		r.Recorder.Eventf(exec, nil, corev1.EventTypeNormal, st.Reason, "Run", "%s in %.3fs", st.Message, st.Duration)
	case fnv1.PhaseFailed:
		observeFinished(&st)
		r.Recorder.Eventf(exec, nil, corev1.EventTypeWarning, st.Reason, "Run", "%s", st.Message)
	}
}

func (r *ExecutionReconciler) deleteJob(ctx context.Context, exec *fnv1.Execution) error {
	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: jobName(exec.Name)}
	if err := r.Get(ctx, key, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(job, exec) || job.DeletionTimestamp != nil {
		return nil
	}
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if err == nil {
		log.FromContext(ctx).V(1).Info("deleted job after capturing the result", "job", job.Name)
	}
	return client.IgnoreNotFound(err)
}

// getLive reads from the cache and, when the cache has nothing, from the
// API server: a freshly created object may not be cached yet, and calling
// it gone would fail a healthy execution.
func (r *ExecutionReconciler) getLive(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	err := r.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		return r.APIReader.Get(ctx, key, obj)
	}
	return err
}

// SetupWithManager wires the controller: Executions, their Jobs, and the
// Jobs' pods (labelled with the Execution's name).
func (r *ExecutionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fnv1.Execution{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToExecution)).
		Watches(&fnv1.Function{}, handler.EnqueueRequestsFromMapFunc(r.waitingExecutions)).
		Named("execution").
		Complete(r)
}

// waitingExecutions are a Function's Executions that have no Job yet: the
// ones that may be waiting for it.
func (r *ExecutionReconciler) waitingExecutions(ctx context.Context, fn client.Object) []ctrl.Request {
	var execs fnv1.ExecutionList
	if err := r.List(ctx, &execs, client.InNamespace(fn.GetNamespace()), client.MatchingFields{kube.ExecutionFunctionField: fn.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the executions of a function", "function", fn.GetName())
		return nil
	}
	var requests []ctrl.Request
	for _, e := range execs.Items {
		if e.Status.JobName == "" && !e.Status.Status.IsFinished() {
			requests = append(requests, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.Namespace, Name: e.Name}})
		}
	}
	return requests
}

func podToExecution(_ context.Context, obj client.Object) []ctrl.Request {
	name, ok := obj.GetLabels()[labelExecution]
	if !ok {
		return nil
	}
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}
