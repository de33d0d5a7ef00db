// Package kube holds what every kfn process shares about the cluster: the
// scheme, the label on the objects kfn makes, the cache filter that keeps
// only those, and the index that lists a Function's Executions. The
// operator (controllers) and the REST facade (apiserver) both use it, so
// neither imports the other.
package kube

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

const (
	// LabelManagedBy marks every object kfn creates; kfn caches only those.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kfn"
	// LabelProject, set to "true", opts a namespace in as an Appwrite
	// project: the facade serves it and the operator grants the facade
	// what it needs there (internal/projectaccess).
	LabelProject = "functions.kfn.dev/project"
	// LabelProjectID and LabelFunctionID carry a project namespace's and a
	// Function's Appwrite IDs, which may hold what Kubernetes names cannot
	// (upper case, '.', '_'); without one, the object's name is its ID.
	LabelProjectID  = "functions.kfn.dev/project-id"
	LabelFunctionID = "functions.kfn.dev/function-id"

	// ExecutionFunctionField indexes Executions by the Function they run.
	ExecutionFunctionField = "spec.functionName"
	// UnfinishedExecutionFunctionField indexes the Executions that have not
	// finished by the Function they run.
	UnfinishedExecutionFunctionField = "unfinished.spec.functionName"
	// UnfinishedExecutionField indexes the Executions that have not
	// finished under the value "true": with a namespace, a namespace's
	// live work (what admission counts against its cap).
	UnfinishedExecutionField = "unfinished"
)

// NewScheme knows the Kubernetes types and kfn's: what every kfn manager
// and client reads and writes.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(fnv1.AddToScheme(scheme))
	return scheme
}

// AppwriteID is the Appwrite ID obj carries in label, else its name.
func AppwriteID(obj metav1.Object, label string) string {
	if id, ok := obj.GetLabels()[label]; ok {
		return id
	}
	return obj.GetName()
}

// ManagedLabels are the labels every object kfn creates carries.
func ManagedLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy}
}

// ManagedObjectsOnly limits a cache to the Jobs, pods, Secrets and
// RoleBindings kfn made, and the namespaces that are projects, so a kfn
// process neither holds every such object of the cluster in memory nor
// needs the right to.
func ManagedObjectsOnly() map[client.Object]cache.ByObject {
	managed := labels.SelectorFromSet(ManagedLabels())
	return map[client.Object]cache.ByObject{
		&batchv1.Job{}:        {Label: managed},
		&corev1.Pod{}:         {Label: managed},
		&corev1.Secret{}:      {Label: managed},
		&rbacv1.RoleBinding{}: {Label: managed},
		&corev1.Namespace{}:   {Label: labels.SelectorFromSet(labels.Set{LabelProject: "true"})},
	}
}

// IndexExecutionsByFunction registers the field index ListExecutionsOf reads.
func IndexExecutionsByFunction(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &fnv1.Execution{}, ExecutionFunctionField, func(obj client.Object) []string {
		return []string{obj.(*fnv1.Execution).Spec.FunctionName}
	})
}

// IndexUnfinishedExecutions registers the UnfinishedExecutionFunctionField
// index: what looks for a Function's live work (Executions waiting for it,
// a schedule's unfinished ticks) lists only those, so its cost follows live
// work rather than the stored history.
// The UnfinishedExecutionField index comes with it.
func IndexUnfinishedExecutions(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &fnv1.Execution{}, UnfinishedExecutionFunctionField, func(obj client.Object) []string {
		e := obj.(*fnv1.Execution)
		if e.Status.Status.IsFinished() {
			return nil
		}
		return []string{e.Spec.FunctionName}
	})
	if err != nil {
		return err
	}
	return indexer.IndexField(ctx, &fnv1.Execution{}, UnfinishedExecutionField, func(obj client.Object) []string {
		if obj.(*fnv1.Execution).Status.Status.IsFinished() {
			return nil
		}
		return []string{"true"}
	})
}

// ListExecutionsOf lists the Executions of one Function from a cache that
// has the IndexExecutionsByFunction index.
func ListExecutionsOf(ctx context.Context, r client.Reader, namespace, function string, opts ...client.ListOption) (*fnv1.ExecutionList, error) {
	list := &fnv1.ExecutionList{}
	opts = append([]client.ListOption{client.InNamespace(namespace), client.MatchingFields{ExecutionFunctionField: function}}, opts...)
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	return list, nil
}
