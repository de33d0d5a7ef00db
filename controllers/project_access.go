package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/projectaccess"
)

// ProjectAccessReconciler grants the REST facade its rights in each project
// namespace, and only there: a RoleBinding of the project ClusterRole
// (internal/projectaccess) to the facade's service account exists exactly
// in the namespaces labelled kube.LabelProject=true. So the facade, which
// faces the internet, holds no cluster-wide right to Secrets or to create
// anything.
type ProjectAccessReconciler struct {
	client.Client
	// Role is the ClusterRole to bind (the chart's kfn-apiserver-project).
	Role string
	// Facade is the facade's service account.
	Facade types.NamespacedName
}

// The manager may create these bindings without the `bind` verb: it holds
// every right of the project role itself (the API server's escalation
// check). It may change or delete no RoleBinding but its own.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=list;watch;create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,resourceNames=kfn-apiserver,verbs=get;update;patch;delete

// Reconcile makes the namespace's binding match whether it is a project.
func (r *ProjectAccessReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &corev1.Namespace{}
	// The cache holds project namespaces only: one not found there is not
	// (or no longer) a project.
	err := r.Get(ctx, types.NamespacedName{Name: req.Name}, ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	isProject := err == nil && ns.DeletionTimestamp.IsZero() && ns.Labels[kube.LabelProject] == "true"
	want := projectaccess.Binding(req.Name, r.Role, r.Facade)
	have := &rbacv1.RoleBinding{}
	err = r.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case err != nil && !apierrors.IsNotFound(err):
		return ctrl.Result{}, err
	case apierrors.IsNotFound(err):
		if !isProject {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, client.IgnoreAlreadyExists(r.Create(ctx, want))
	case !isProject || have.RoleRef != want.RoleRef:
		// A roleRef cannot change: a binding to another role goes, and the
		// next reconcile (its delete event) makes the right one.
		return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, have, client.Preconditions{UID: &have.UID}))
	case !equality.Semantic.DeepEqual(have.Subjects, want.Subjects):
		have.Subjects = want.Subjects
		if err := r.Update(ctx, have); err != nil {
			return ctrl.Result{}, fmt.Errorf("restoring the facade's binding in %s: %w", req.Name, err)
		}
	}
	return ctrl.Result{}, nil
}

// SetupWithManager reconciles each project namespace and kfn's binding in it.
func (r *ProjectAccessReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Namespace{}).
		Watches(&rbacv1.RoleBinding{}, handler.EnqueueRequestsFromMapFunc(bindingToNamespace),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
				return obj.GetName() == projectaccess.BindingName
			}))).
		Named("projectaccess").
		Complete(r)
}

func bindingToNamespace(_ context.Context, obj client.Object) []ctrl.Request {
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Name: obj.GetNamespace()}}}
}
