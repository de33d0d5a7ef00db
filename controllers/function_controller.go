package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// FunctionReconciler keeps a Function's inline code in a Secret, reports
// whether the Function can run, and prunes its execution history.
type FunctionReconciler struct {
	client.Client
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Runtimes  RuntimeCatalog
	// Retention deletes finished Executions this long after they finished,
	// like Appwrite's execution retention (14 days by default); 0 keeps
	// them (the history limits still apply). Clock measures it.
	Retention time.Duration
	Clock     clock.PassiveClock
	// Archived: finished Executions go to the archive, and the
	// ArchiveReconciler deletes each once its record is committed. No
	// pruning here then, by age or count, as it would delete records the
	// archive does not have yet; the archive's own retention applies.
	Archived bool
}

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// Reconcile syncs the code Secret, then the Ready condition, then prunes.
func (r *FunctionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	fn := &fnv1.Function{}
	if err := r.Get(ctx, req.NamespacedName, fn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	syncProblem, err := r.syncCodeSecret(ctx, fn)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready, err := r.readiness(ctx, fn, syncProblem)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeStatus(ctx, fn, ready); err != nil {
		return ctrl.Result{}, err
	}
	expiry, err := r.pruneHistory(ctx, fn)
	return ctrl.Result{RequeueAfter: expiry}, err
}

// maxInlineCodeBytes is what one Secret holds, and so the most inline code.
const maxInlineCodeBytes = 1 << 20

// syncCodeSecret stores inline code in a Secret the Function controls. Code
// no Secret can hold is a problem of the Function, not an error to retry.
func (r *FunctionReconciler) syncCodeSecret(ctx context.Context, fn *fnv1.Function) (*problem, error) {
	if fn.Spec.Code == nil || fn.Spec.Code.Inline == nil {
		return nil, nil
	}
	if p := inlineCodeTooLarge(fn.Spec.Code.Inline); p != nil {
		return p, nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: codeSecretName(fn.Name), Namespace: fn.Namespace}}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, secret, func() error {
		if secret.Labels == nil {
			secret.Labels = map[string]string{}
		}
		secret.Labels[kube.LabelManagedBy] = kube.ManagedBy
		secret.Labels[labelFunction] = fn.Name
		secret.Type = corev1.SecretTypeOpaque
		secret.Data = nil
		secret.StringData = nil
		secret.Data = make(map[string][]byte, len(fn.Spec.Code.Inline))
		for path, content := range fn.Spec.Code.Inline {
			secret.Data[codeKey(path)] = []byte(content)
		}
		return controllerutil.SetControllerReference(fn, secret, r.Scheme)
	})
	if apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) {
		return &problem{fnv1.ReasonCodeSyncFailed, fmt.Sprintf("the inline code cannot be stored in secret %s: %v", secret.Name, err)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("syncing code secret %s: %w", secret.Name, err)
	}
	if op != controllerutil.OperationResultNone {
		r.Recorder.Eventf(fn, secret, corev1.EventTypeNormal, "CodeSynced", "SyncCode", "code secret %s %s", secret.Name, op)
	}
	return nil, nil
}

// inlineCodeTooLarge refuses code over what a Secret holds, saying where
// larger code goes.
func inlineCodeTooLarge(files map[string]string) *problem {
	size := 0
	for path, content := range files {
		size += len(codeKey(path)) + len(content)
	}
	if size <= maxInlineCodeBytes {
		return nil
	}
	return &problem{fnv1.ReasonCodeSyncFailed, fmt.Sprintf("the inline code is %d bytes, over the %d a Secret holds: "+
		"build larger code (node_modules, packages) into the function's image (docs/runtimes.md, \"Larger code\")", size, maxInlineCodeBytes)}
}

// readiness computes the Ready condition from the Function and the catalog.
func (r *FunctionReconciler) readiness(ctx context.Context, fn *fnv1.Function, syncProblem *problem) (metav1.Condition, error) {
	notReady := func(p *problem) (metav1.Condition, error) {
		return metav1.Condition{Type: fnv1.FunctionReady, Status: metav1.ConditionFalse, Reason: p.Reason, Message: p.Message}, nil
	}
	if !fn.IsEnabled() {
		return notReady(&problem{fnv1.ReasonDisabled, "the function is disabled"})
	}
	if _, p := resolveFunction(fn, r.Runtimes); p != nil {
		return notReady(p)
	}
	if syncProblem != nil {
		return notReady(syncProblem)
	}
	if p, err := r.codeProblem(ctx, fn); err != nil || p != nil {
		if err != nil {
			return metav1.Condition{}, err
		}
		return notReady(p)
	}
	if p := scheduleProblem(fn); p != nil {
		return notReady(p)
	}
	return metav1.Condition{Type: fnv1.FunctionReady, Status: metav1.ConditionTrue, Reason: fnv1.ReasonReady, Message: "the function can run"}, nil
}

// codeProblem checks that referenced code exists. Such objects are not
// watched (they may be any Secret), so the API server is asked directly.
func (r *FunctionReconciler) codeProblem(ctx context.Context, fn *fnv1.Function) (*problem, error) {
	code := fn.Spec.Code
	var obj client.Object
	switch {
	case code == nil || code.Inline != nil:
		return nil, nil
	case code.SecretRef != nil:
		obj = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: code.SecretRef.Name}}
	case code.ConfigMapRef != nil:
		obj = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: code.ConfigMapRef.Name}}
	}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: fn.Namespace, Name: obj.GetName()}, obj)
	if apierrors.IsNotFound(err) {
		kind := "secret"
		if code.ConfigMapRef != nil {
			kind = "configmap"
		}
		return &problem{fnv1.ReasonCodeNotFound, fmt.Sprintf("code %s %q not found", kind, obj.GetName())}, nil
	}
	return nil, err
}

func (r *FunctionReconciler) writeStatus(ctx context.Context, fn *fnv1.Function, ready metav1.Condition) error {
	status := fn.Status.DeepCopy()
	status.ObservedGeneration = fn.Generation
	ready.ObservedGeneration = fn.Generation
	meta.SetStatusCondition(&status.Conditions, ready)
	rf, _ := resolveFunction(fn, r.Runtimes)
	status.Image = rf.Image
	wasReady := meta.IsStatusConditionTrue(fn.Status.Conditions, fnv1.FunctionReady)
	if changed, err := patchFunctionStatus(ctx, r.Client, fn, *status); err != nil || !changed {
		return err
	}
	if isReady := ready.Status == metav1.ConditionTrue; isReady != wasReady || !isReady {
		eventType := corev1.EventTypeNormal
		if !isReady {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(fn, nil, eventType, ready.Reason, "Validate", "%s", ready.Message)
	}
	return nil
}

// patchFunctionStatus writes status as a merge patch of what it changes.
// The Function and schedule controllers share the status, each changing
// only its own fields from the Function it read: the patch holds just
// those, so neither undoes the other's. It reports whether there was a change.
func patchFunctionStatus(ctx context.Context, c client.Client, fn *fnv1.Function, status fnv1.FunctionStatus) (bool, error) {
	if equality.Semantic.DeepEqual(fn.Status, status) {
		return false, nil
	}
	base := fn.DeepCopy()
	fn.Status = status
	return true, c.Status().Patch(ctx, fn, client.MergeFrom(base))
}

// pruneHistory deletes finished Executions past the retention (the primary
// rule, as Appwrite's), and the oldest beyond the Function's history
// limits, a cap that stays on so a busy function's history cannot fill
// etcd within the retention. It says when the next one expires (0: none).
//
// It runs after every finished execution, so the list is not copied out of
// the cache: its Executions are only read (and deleted), never changed.
func (r *FunctionReconciler) pruneHistory(ctx context.Context, fn *fnv1.Function) (nextExpiry time.Duration, err error) {
	if r.Archived {
		return 0, nil
	}
	execs, err := kube.ListExecutionsOf(ctx, r, fn.Namespace, fn.Name, client.UnsafeDisableDeepCopy)
	if err != nil {
		return 0, err
	}
	var completed, failed []*fnv1.Execution
	for i := range execs.Items {
		e := &execs.Items[i]
		switch {
		case e.DeletionTimestamp != nil:
		case e.Status.Status == fnv1.PhaseCompleted:
			completed = append(completed, e)
		case e.Status.Status == fnv1.PhaseFailed:
			failed = append(failed, e)
		}
	}
	keepCompleted, keepFailed := fn.HistoryLimits()
	for _, group := range []struct {
		execs []*fnv1.Execution
		keep  int
	}{{completed, keepCompleted}, {failed, keepFailed}} {
		for _, e := range oldestBeyond(group.execs, group.keep) {
			if err := r.deleteExecution(ctx, e); err != nil {
				return 0, err
			}
		}
	}
	if r.Retention <= 0 {
		return 0, nil
	}
	for _, e := range append(completed, failed...) {
		left := r.Retention - r.Clock.Since(finishedAt(e).Time)
		switch {
		case e.DeletionTimestamp != nil:
		case left <= 0:
			if err := r.deleteExecution(ctx, e); err != nil {
				return 0, err
			}
		case nextExpiry == 0 || left < nextExpiry:
			nextExpiry = left
		}
	}
	return nextExpiry, nil
}

func (r *FunctionReconciler) deleteExecution(ctx context.Context, e *fnv1.Execution) error {
	if e.DeletionTimestamp != nil {
		return nil
	}
	return client.IgnoreNotFound(r.Delete(ctx, e, client.Preconditions{UID: &e.UID}))
}

// oldestBeyond returns the executions past the newest keep ones. It sorts
// (pointers only) just when some are beyond, that is rarely more than the
// limit plus the few that finished since the last prune.
func oldestBeyond(execs []*fnv1.Execution, keep int) []*fnv1.Execution {
	if len(execs) <= keep {
		return nil
	}
	slices.SortFunc(execs, func(a, b *fnv1.Execution) int { return finishedAt(b).Compare(finishedAt(a).Time) })
	return execs[keep:]
}

func finishedAt(e *fnv1.Execution) metav1.Time {
	if e.Status.CompletionTime != nil {
		return *e.Status.CompletionTime
	}
	return e.CreationTimestamp
}

// SetupWithManager wires the controller: Functions, their code Secrets, and
// their Executions (for pruning).
func (r *FunctionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fnv1.Function{}).
		Owns(&corev1.Secret{}).
		Watches(&fnv1.Execution{}, handler.EnqueueRequestsFromMapFunc(executionToFunction)).
		Named("function").
		Complete(r)
}

func executionToFunction(_ context.Context, obj client.Object) []ctrl.Request {
	exec := obj.(*fnv1.Execution)
	if !exec.Status.Status.IsFinished() {
		return nil
	}
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: exec.Namespace, Name: exec.Spec.FunctionName}}}
}
