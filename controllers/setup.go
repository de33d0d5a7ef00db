package controllers

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// NewScheme knows the Kubernetes types and kfn's: what every kfn manager
// and client reads and writes.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(fnv1.AddToScheme(scheme))
	return scheme
}

// ManagedObjectsOnly limits a cache to the Jobs, pods and Secrets kfn made,
// so a kfn process neither holds every pod and Secret of the cluster in
// memory nor needs the right to.
func ManagedObjectsOnly() map[client.Object]cache.ByObject {
	managed := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
	return map[client.Object]cache.ByObject{
		&batchv1.Job{}:   {Label: managed},
		&corev1.Pod{}:    {Label: managed},
		&corev1.Secret{}: {Label: managed},
	}
}
