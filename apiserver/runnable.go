package apiserver

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Annotations the facade sets on the Executions it creates.
const (
	// AnnotationFunctionGeneration is the Function's metadata.generation
	// when the execution was created: what the model shows as deploymentId.
	AnnotationFunctionGeneration = kube.AnnotationFunctionGeneration
)

// Errors of a function that cannot run (Appwrite's pre-execution checks).
const (
	errRuntimeUnsupported = "function_runtime_unsupported"
	errDeploymentNotFound = "deployment_not_found"
	errBuildNotReady      = "build_not_ready"
)

// unrunnable is the Appwrite error of a create whose function cannot run,
// told by its Ready condition, before anything is stored; nil when it can,
// or when the operator has not yet judged its current generation. A bad
// schedule does not stop HTTP runs, and Disabled is the caller's matter
// (hidesDisabled).
func unrunnable(fn *fnv1.Function) *apiError {
	c := meta.FindStatusCondition(fn.Status.Conditions, fnv1.FunctionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != fn.Generation ||
		fn.Status.ObservedGeneration != fn.Generation {
		return nil
	}
	switch c.Reason {
	case fnv1.ReasonRuntimeUnknown:
		return newErrorf(errRuntimeUnsupported, "Runtime %s is not supported", strconv.Quote(fn.Spec.Runtime))
	case fnv1.ReasonCodeNotFound, fnv1.ReasonNoCommand:
		return newError(errDeploymentNotFound)
	case fnv1.ReasonCodeSyncFailed:
		return newError(errBuildNotReady)
	}
	return nil
}

// executionAnnotations are the annotations of a new Execution of fn.
func executionAnnotations(fn *fnv1.Function) map[string]string {
	a := map[string]string{AnnotationFunctionGeneration: strconv.FormatInt(fn.Generation, 10)}
	if !fn.IsEnabled() {
		a[fnv1.AnnotationAllowDisabled] = "true"
	}
	return a
}
