package apiserver

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Appwrite IDs may hold upper case, '.' and '_' (up to 36 characters);
// Kubernetes names cannot. A project namespace and a Function may carry
// their Appwrite ID in a label (kube.LabelProjectID, kube.LabelFunctionID),
// which clients then use instead of the object's name, and answers show;
// the operator gives the function's pod the same IDs.

// Cache indexes of the ID labels, so a request finds the object without
// a scan.
const (
	indexProjectID  = "apiserver.projectId"
	indexFunctionID = "apiserver.functionId"
)

// labelIndex indexes objects by a label's value, whatever it is: an
// invalid ID is found, and refused clearly (claimed).
func labelIndex(label string) client.IndexerFunc {
	return func(o client.Object) []string {
		if v, ok := o.GetLabels()[label]; ok {
			return []string{v}
		}
		return nil
	}
}

// indexIDs adds the ID indexes to the caches the facade reads namespaces
// and Functions from; before they start.
func indexIDs(ctx context.Context, namespaces, functions client.FieldIndexer) error {
	if err := namespaces.IndexField(ctx, &corev1.Namespace{}, indexProjectID, labelIndex(kube.LabelProjectID)); err != nil {
		return fmt.Errorf("indexing project IDs: %w", err)
	}
	if err := functions.IndexField(ctx, &fnv1.Function{}, indexFunctionID, labelIndex(kube.LabelFunctionID)); err != nil {
		return fmt.Errorf("indexing function IDs: %w", err)
	}
	return nil
}

// resolveProject finds the project namespace an Appwrite project ID names:
// the one labelled with it, else the namespace of that name.
func (s *Server) resolveProject(ctx context.Context, id string) (*corev1.Namespace, *apiError) {
	list := &corev1.NamespaceList{}
	if err := s.projects.List(ctx, list, client.MatchingFields{indexProjectID: id}); err != nil {
		return nil, internalError(err)
	}
	items := make([]*corev1.Namespace, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	ns, aerr := claimed(items, id, kube.LabelProjectID, "namespace")
	if aerr != nil || ns != nil {
		return ns, aerr
	}
	ns = &corev1.Namespace{}
	if err := s.projects.Get(ctx, types.NamespacedName{Name: id}, ns); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			return nil, newError(errProjectNotFound)
		}
		return nil, internalError(err)
	}
	if aerr := checkIDLabel(ns, kube.LabelProjectID, "namespace"); aerr != nil {
		return nil, aerr
	}
	return ns, nil
}

// resolveFunction finds the Function an Appwrite function ID names in a
// project: the one labelled with it, else the Function of that name. nil
// when there is none.
func (s *Server) resolveFunction(ctx context.Context, namespace, id string) (*fnv1.Function, *apiError) {
	list := &fnv1.FunctionList{}
	if err := s.reader.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexFunctionID: id}); err != nil {
		return nil, internalError(err)
	}
	items := make([]*fnv1.Function, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	fn, aerr := claimed(items, id, kube.LabelFunctionID, "Function")
	if aerr != nil || fn != nil {
		return fn, aerr
	}
	fn = &fnv1.Function{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: id}, fn); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			return nil, nil
		}
		return nil, internalError(err)
	}
	if aerr := checkIDLabel(fn, kube.LabelFunctionID, "Function"); aerr != nil {
		return nil, aerr
	}
	return fn, nil
}

// claimed is the one object labelled with an ID: nil when none is, and a
// clear error when several are, or the ID is not an Appwrite ID.
func claimed[T client.Object](items []T, id, label, kind string) (T, *apiError) {
	var none T
	switch len(items) {
	case 0:
		return none, nil
	case 1:
		if !ValidUID(id) {
			return none, invalidIDLabel(kind, items[0], label, id)
		}
		return items[0], nil
	}
	names := make([]string, len(items))
	for i, o := range items {
		names[i] = o.GetName()
	}
	sort.Strings(names)
	return none, newErrorf(errServerError, "The Appwrite ID %q is claimed by the %ss %s (label %s): an ID must name one %s; fix the labels",
		id, kind, strings.Join(names, ", "), label, kind)
}

// checkIDLabel refuses an object whose ID label is not an Appwrite ID.
func checkIDLabel(o client.Object, label, kind string) *apiError {
	if v, ok := o.GetLabels()[label]; ok && !ValidUID(v) {
		return invalidIDLabel(kind, o, label, v)
	}
	return nil
}

func invalidIDLabel(kind string, o client.Object, label, v string) *apiError {
	return newErrorf(errServerError, "The %s %q has an invalid %s label %q: an Appwrite ID has 1 to 36 letters, digits, '.', '-' or '_', and does not start with '.', '-' or '_'",
		kind, o.GetName(), label, v)
}

// functionAppwriteID is the ID answers show for a Function (its label is
// checked when the Function is resolved).
func functionAppwriteID(fn *fnv1.Function) string {
	return kube.AppwriteID(fn, kube.LabelFunctionID)
}
