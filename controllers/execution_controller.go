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
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
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
	// MaxRunningPerNamespace caps the Executions running at once in one
	// namespace, whatever their Functions (0: no cap); see admission.go.
	MaxRunningPerNamespace int
	// Workers reconcile that many Executions at once (at least one);
	// admission's mutex orders their slot decisions.
	Workers int

	admission admission
	own       ownWrites
	deleted   sentDeletes
}

// ownWriteGrace is how long a reconcile waits for the cache to show the
// operator's own last write to an Execution (see ownWrites).
const ownWriteGrace = 10 * time.Second

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves an Execution through its phases in steps: resolve its
// Function, make the writes that tie objects together (ownership), observe
// the world read-only, judge it with the failure rules, start the Job if
// nothing stands in the way, then write the status rebuilt from the world.
func (r *ExecutionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	exec := &fnv1.Execution{}
	if err := r.Get(ctx, req.NamespacedName, exec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if wait := r.own.behind(exec); wait > 0 {
		// The watch event of that write reconciles again; the requeue is
		// for when another client's write came after it.
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if exec.Status.Status.IsFinished() {
		// Only cleanup is left. exec may be a trimmed cached copy
		// (kube.CacheOptions): it is never written back.
		return ctrl.Result{}, r.cleanUp(ctx, exec, false)
	}
	fn, err := r.function(ctx, exec)
	if err != nil {
		return ctrl.Result{}, err
	}
	// A delayed Execution (scheduledAt) is owned at once too, so deleting
	// the Function cancels it.
	if err := r.ownByFunction(ctx, exec, fn); err != nil {
		return ctrl.Result{}, err
	}
	if wait := r.untilDue(exec); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, r.writeStatus(ctx, exec, scheduledStatus(exec))
	}

	w, err := r.observe(ctx, exec, fn)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.adoptSecrets(ctx, exec, w.secrets); err != nil {
		return ctrl.Result{}, err
	}
	failure := firstFailure(w)
	if failure == nil && w.canStart() {
		if err := r.start(ctx, exec, &w); err != nil {
			return ctrl.Result{}, err
		}
	}

	status := desiredStatus(w, failure, r.Clock.Now(), r.MaxRecordBytes)
	if onlyPodAppeared(exec.Status, status, w.pod) {
		return ctrl.Result{}, nil
	}
	if err := r.writeRecord(ctx, exec, status); err != nil {
		return ctrl.Result{}, err
	}
	if status.Status.IsFinished() {
		return ctrl.Result{}, r.cleanUp(ctx, exec, true)
	}
	// A Function or request Secret that appears wakes its Executions; the
	// requeue ends the wait.
	return ctrl.Result{RequeueAfter: max(w.awaitFunction, w.awaitSecrets)}, nil
}

// arrivalGrace is how long a new Execution waits for what it names to
// appear before failing: `kubectl apply -f` of a folder creates objects in
// file-name order, so an Execution may come a moment before its Function;
// the REST facade creates the request's Secrets just after the Execution,
// since they name it as their owner.
const arrivalGrace = 10 * time.Second

// untilDue is how long a delayed Execution still waits; 0 once it is due
// (or it has no scheduledAt, or its Job already exists).
func (r *ExecutionReconciler) untilDue(exec *fnv1.Execution) time.Duration {
	if exec.Spec.ScheduledAt == nil || exec.Status.JobName != "" {
		return 0
	}
	return max(exec.Spec.ScheduledAt.Sub(r.Clock.Now()), 0)
}

// function returns the Execution's Function, or nil if it does not exist.
func (r *ExecutionReconciler) function(ctx context.Context, exec *fnv1.Execution) (*fnv1.Function, error) {
	fn := &fnv1.Function{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: exec.Spec.FunctionName}
	if err := r.getLive(ctx, key, fn); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return fn, nil
}

// ownByFunction makes the Function the Execution's owner, so deleting the
// Function cascades to its Executions.
func (r *ExecutionReconciler) ownByFunction(ctx context.Context, exec *fnv1.Execution, fn *fnv1.Function) error {
	if fn == nil {
		return nil
	}
	if owned, _ := controllerutil.HasOwnerReference(exec.OwnerReferences, fn, r.Scheme); owned {
		return nil
	}
	patch := client.MergeFrom(exec.DeepCopy())
	if err := controllerutil.SetOwnerReference(fn, exec, r.Scheme); err != nil {
		return err
	}
	if err := r.Patch(ctx, exec, patch); err != nil {
		return fmt.Errorf("owning execution by its function: %w", err)
	}
	r.own.wrote(exec)
	return nil
}

// observe gathers, without writing anything, what the status is derived
// from: the Job, its pod and the runner's result, or, before the Job exists,
// the request's Secrets and how long the Function and missing Secrets are
// still awaited.
func (r *ExecutionReconciler) observe(ctx context.Context, exec *fnv1.Execution, fn *fnv1.Function) (world, error) {
	w := world{exec: exec, fn: fn, now: r.Clock.Now()}
	if fn != nil {
		w.resolved, w.unrunnable = resolveFunction(fn, r.Runtimes)
		if w.unrunnable == nil {
			w.unrunnable = codeNotStored(fn)
		}
	}
	var err error
	if w.job, err = r.job(ctx, exec); err != nil {
		return w, err
	}
	if w.starting() {
		w.awaitFunction = r.awaitFunction(exec, fn)
		w.secrets, err = r.requestSecrets(ctx, exec)
		w.awaitSecrets = r.awaitSecrets(exec, w.secrets)
		return w, err
	}
	if w.job == nil {
		return w, nil
	}
	if w.pod, err = r.pod(ctx, exec, w.job); err != nil || w.pod == nil {
		return w, err
	}
	if cs := functionStatus(w.pod); cs != nil && cs.State.Terminated != nil {
		w.result, w.noResult, err = r.result(ctx, w.pod, cs.State.Terminated)
	}
	return w, err
}

// awaitFunction is how much longer a new Execution waits for its missing
// Function; 0 when the Function exists or the grace is over.
func (r *ExecutionReconciler) awaitFunction(exec *fnv1.Execution, fn *fnv1.Function) time.Duration {
	if fn != nil {
		return 0
	}
	return r.graceLeft(exec)
}

// graceLeft is what remains of a new Execution's arrivalGrace.
func (r *ExecutionReconciler) graceLeft(exec *fnv1.Execution) time.Duration {
	// Capped: an operator clock behind the API server's must not stretch the wait.
	return min(max(arrivalGrace-r.Clock.Since(exec.CreationTimestamp.Time), 0), arrivalGrace)
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

// pod returns the Execution's pod: one its Job controls. Anyone who can
// create pods can label one for the Execution, so only the controller
// reference to the Job's UID is trusted. With backoffLimit 0 there is at
// most one.
func (r *ExecutionReconciler) pod(ctx context.Context, exec *fnv1.Execution, job *batchv1.Job) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(exec.Namespace), client.MatchingLabels{labelExecution: exec.Name}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if metav1.IsControlledBy(&pods.Items[i], job) {
			return &pods.Items[i], nil
		}
	}
	if exec.Status.PodName == "" {
		return nil, nil
	}
	pod := &corev1.Pod{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: exec.Namespace, Name: exec.Status.PodName}, pod)
	if err != nil || !metav1.IsControlledBy(pod, job) {
		return nil, client.IgnoreNotFound(err)
	}
	return pod, nil
}

// result reads the runner's report from the termination message, or from
// the container log when it did not fit there. The problem says why an
// ended container left no result the runner can have written.
func (r *ExecutionReconciler) result(ctx context.Context, pod *corev1.Pod, term *corev1.ContainerStateTerminated) (*runner.Result, *problem, error) {
	res, err := runner.ParseTerminationMessage(term.Message)
	if err != nil {
		msg := fmt.Sprintf("the function container ended (%s, exit code %d) without a result from the runner", term.Reason, term.ExitCode)
		if pod.Status.Reason != "" {
			msg += fmt.Sprintf("; pod %s: %s", pod.Status.Reason, pod.Status.Message)
		}
		return nil, &problem{fnv1.ReasonNoResult, fmt.Sprintf("%s: %v", msg, err)}, nil
	}
	if res.InLog {
		var p *problem
		if res, p, err = r.logResult(ctx, pod, res); res == nil {
			return nil, p, err
		}
	}
	if p := untrusted(res, pod, term); p != nil {
		return nil, p, nil
	}
	return res, nil, nil
}

// start makes the Job once admission gives the Execution a slot, or
// records in w why it waits for one.
func (r *ExecutionReconciler) start(ctx context.Context, exec *fnv1.Execution, w *world) error {
	held, err := r.admit(ctx, exec)
	if err != nil || held != "" {
		w.heldBy = held
		return err
	}
	w.job, err = r.createJob(ctx, exec, w.fn, w.resolved)
	return err
}

func (r *ExecutionReconciler) createJob(ctx context.Context, exec *fnv1.Execution, fn *fnv1.Function, rf resolvedFunction) (*batchv1.Job, error) {
	rf.ProjectID = r.projectID(ctx, exec.Namespace)
	job := buildJob(exec, fn, rf, r.Jobs)
	if err := controllerutil.SetControllerReference(exec, job, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Recorder.Eventf(exec, nil, corev1.EventTypeWarning, "JobCreateFailed", "CreateJob", "creating job %s: %v", job.Name, err)
		return nil, err
	}
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
	r.own.wrote(exec)
	if before != status.Status {
		r.recordTransition(exec)
	}
	return nil
}

// recordTransition records how a run ended as a Kubernetes Event: Normal
// on completion, Warning on failure. The phases before it are in the
// status; an Event for each would cost every execution more API writes.
func (r *ExecutionReconciler) recordTransition(exec *fnv1.Execution) {
	st := exec.Status
	switch st.Status {
	case fnv1.PhaseCompleted:
		observeFinished(&st)
		r.Recorder.Eventf(exec, nil, corev1.EventTypeNormal, st.Reason, "Run", "%s in %.3fs", st.Message, st.Duration)
	case fnv1.PhaseFailed:
		observeFinished(&st)
		r.Recorder.Eventf(exec, nil, corev1.EventTypeWarning, st.Reason, "Run", "%s", st.Message)
	}
}

// onlyPodAppeared reports whether the new status differs from the recorded
// one only by the pod the Job just made, which nobody waits for: the write
// is saved, and the function starting (or a reason the pod is stuck)
// records the pod a moment later.
func onlyPodAppeared(recorded, next fnv1.ExecutionStatus, pod *corev1.Pod) bool {
	return recorded.Status == fnv1.PhaseWaiting && next.Status == fnv1.PhaseWaiting &&
		recorded.JobName != "" && recorded.JobName == next.JobName && recorded.PodName == "" &&
		pod != nil && waitingReason(pod) == ""
}

// cleanUp deletes what a finished Execution no longer needs once its record
// is written: the Job with its pod, and the request's Secrets. justFinished
// says the record was written in this reconcile.
func (r *ExecutionReconciler) cleanUp(ctx context.Context, exec *fnv1.Execution, justFinished bool) error {
	if err := r.deleteJob(ctx, exec); err != nil {
		return err
	}
	return r.deleteRequestSecrets(ctx, exec, justFinished)
}

func (r *ExecutionReconciler) deleteJob(ctx context.Context, exec *fnv1.Execution) error {
	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: exec.Namespace, Name: jobName(exec.Name)}
	if err := r.Get(ctx, key, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(job, exec) || job.DeletionTimestamp != nil || r.deleted.sent(job.UID) {
		return nil
	}
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if err == nil {
		r.deleted.add(job.UID)
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

// SetupWithManager wires the controller: Executions, their Jobs, the Jobs'
// pods, new request Secrets (both labelled with the Execution's name), and
// Executions that finish, for those waiting for their slots.
func (r *ExecutionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.own, r.deleted = newOwnWrites(r.Clock, ownWriteGrace), newSentDeletes()
	return ctrl.NewControllerManagedBy(mgr).
		For(&fnv1.Execution{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(labelledExecution)).
		// Only a Secret's creation ends a wait; its other changes, the
		// operator's own adoption and deletion included, change nothing.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(labelledExecution),
			builder.WithPredicates(predicate.Funcs{
				UpdateFunc: func(event.UpdateEvent) bool { return false },
				DeleteFunc: func(event.DeleteEvent) bool { return false },
			})).
		Watches(&fnv1.Function{}, handler.EnqueueRequestsFromMapFunc(r.waitingExecutions)).
		Watches(&fnv1.Execution{}, r.slotEvents()).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Named("execution").
		Complete(r)
}

// waitingExecutions are a Function's Executions that have no Job yet: the
// ones that may be waiting for it.
func (r *ExecutionReconciler) waitingExecutions(ctx context.Context, fn client.Object) []ctrl.Request {
	var execs fnv1.ExecutionList
	// Runs on every change of a Function: only its unfinished Executions
	// are listed, and only read, so the cache's objects are not copied.
	if err := r.List(ctx, &execs, client.InNamespace(fn.GetNamespace()),
		client.MatchingFields{kube.UnfinishedExecutionFunctionField: fn.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
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

// labelledExecution maps an object labelled for an Execution (its pod, a
// request Secret) to that Execution. The label alone decides nothing: the
// reconcile checks who controls or owns the object.
func labelledExecution(_ context.Context, obj client.Object) []ctrl.Request {
	name, ok := obj.GetLabels()[labelExecution]
	if !ok {
		return nil
	}
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// projectID is the Appwrite project ID of a namespace: its
// kube.LabelProjectID label when it is a project (the cache holds only
// those), else its name.
func (r *ExecutionReconciler) projectID(ctx context.Context, namespace string) string {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return namespace
	}
	return kube.AppwriteID(ns, kube.LabelProjectID)
}
