package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/kube"
)

// ArchiveReconciler moves finished Executions into the archive: it writes
// each one's record and, once the record is committed and the Execution
// finished more than KeepLive ago, deletes the object. An archive that is
// down delays the deletion (the reconcile fails and backs off); it never
// loses a record. With it on, the FunctionReconciler prunes nothing
// (FunctionReconciler.Archived): this controller is what deletes records.
type ArchiveReconciler struct {
	client.Client
	// APIReader reads an Execution whose cached copy lacks its outputs.
	APIReader client.Reader
	Archive   *archive.Store
	// KeepLive is how long a finished Execution stays an object, so that
	// kubectl and the watch still show recent runs.
	KeepLive time.Duration
	Clock    clock.PassiveClock
	// Workers archive that many Executions at once (at least one): a
	// burst finishes faster than one upsert at a time.
	Workers int
}

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;delete

// Reconcile archives a finished Execution, then deletes it when its time
// as an object is over.
func (r *ArchiveReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	exec := &fnv1.Execution{}
	if err := r.Get(ctx, req.NamespacedName, exec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !exec.Status.Status.IsFinished() || exec.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if err := r.archive(ctx, exec); err != nil {
		return ctrl.Result{}, err
	}
	if left := r.KeepLive - r.Clock.Since(finishedAt(exec).Time); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	// The UID precondition: never delete a newer object of the same name,
	// whose record is not archived.
	err := r.Delete(ctx, exec, client.Preconditions{UID: &exec.UID})
	if err == nil {
		log.FromContext(ctx).V(1).Info("archived and deleted", "uid", exec.UID)
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// archive writes the Execution's record unless it is there already; it
// returns nil only when the record is committed (or the object is gone).
func (r *ArchiveReconciler) archive(ctx context.Context, exec *fnv1.Execution) error {
	if has, err := r.Archive.Has(ctx, exec.UID); err != nil || has {
		return err
	}
	if kube.IsStripped(exec) {
		full := &fnv1.Execution{}
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(exec), full)
		if apierrors.IsNotFound(err) || (err == nil && full.UID != exec.UID) {
			return nil // deleted by someone else meanwhile: nothing to archive
		}
		if err != nil {
			return err
		}
		exec = full
	}
	return r.Archive.Put(ctx, exec)
}

// SetupWithManager watches finished Executions.
func (r *ArchiveReconciler) SetupWithManager(mgr ctrl.Manager) error {
	finished := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		e, ok := obj.(*fnv1.Execution)
		return ok && e.Status.Status.IsFinished()
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&fnv1.Execution{}, builder.WithPredicates(finished)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).
		Named("archive").
		Complete(r)
}
