package kube

import (
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

const (
	// AnnotationStripped marks a cached Execution whose outputs (response,
	// response headers, stdout, stderr) the cache left out. Such a copy is
	// for reading the record's summary only: fetch the object from the API
	// server to read its outputs, and never write it back.
	AnnotationStripped = "functions.kfn.dev/cache-stripped"

	// MaxCachedOutputBytes is how large a finished Execution's outputs may
	// be, together, and still be kept in a cache: small records (most of
	// them) are served from memory, large ones cost memory only while live.
	MaxCachedOutputBytes = 1024

	// LabelFunction is set on the objects kfn makes for one Function (its
	// code Secret): the operator keeps their data in its cache.
	LabelFunction = "functions.kfn.dev/function"

	// LabelExecution names the Execution an object was made for: its Job
	// and pod, and the request Secrets (JWT, body parts) the facade
	// creates, which only that Execution may adopt.
	LabelExecution = "functions.kfn.dev/execution"

	// AnnotationFunctionGeneration is the Function's metadata.generation
	// when the facade created the Execution: the Appwrite deploymentId,
	// which the facade shows and the archive stores.
	AnnotationFunctionGeneration = "functions.kfn.dev/function-generation"

	lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
)

// Reader is who reads the cache a transform feeds.
type Reader int

const (
	// Operator reconciles live Executions in full; finished ones only
	// need their identity, phase and times (cleanup, retention, schedules).
	Operator Reader = iota
	// Facade renders records; it never reads the request body.
	Facade
)

// CacheOptions are the cache settings of a kfn process: only the Jobs,
// pods and Secrets kfn made, and objects stripped of what the reader never
// needs, so memory follows live work rather than stored history.
func CacheOptions(reader Reader) cache.Options {
	byObject := ManagedObjectsOnly()
	byObject[&fnv1.Execution{}] = cache.ByObject{Transform: executionTransform(reader)}
	if reader == Operator {
		// The entry ManagedObjectsOnly made is changed, not a second one
		// added: keys are pointers, so two entries of one kind would both
		// stay, and the cache would use either.
		for obj, opts := range byObject {
			if _, ok := obj.(*corev1.Secret); ok {
				opts.Transform = stripSecretData
				byObject[obj] = opts
			}
		}
	}
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
}

// executionTransform strips what a reader does not need; it runs on every
// object the informer stores and must be idempotent.
func executionTransform(reader Reader) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		e, ok := obj.(*fnv1.Execution)
		if !ok {
			return obj, nil
		}
		e.ManagedFields = nil
		delete(e.Annotations, lastAppliedAnnotation)
		finished := e.Status.Status.IsFinished()
		if reader == Facade || finished {
			// The request travels to the pod from the live object only.
			e.Spec.Body, e.Spec.Data, e.Spec.EventData = "", "", ""
		}
		if finished && outputBytes(e) > MaxCachedOutputBytes {
			e.Status.Response, e.Status.Stdout, e.Status.Stderr, e.Status.ResponseHeaders = "", "", "", nil
			if e.Annotations == nil {
				e.Annotations = map[string]string{}
			}
			e.Annotations[AnnotationStripped] = "true"
		}
		return e, nil
	}
}

func outputBytes(e *fnv1.Execution) int {
	n := len(e.Status.Response) + len(e.Status.Stdout) + len(e.Status.Stderr)
	for k, v := range e.Status.ResponseHeaders {
		n += len(k) + len(v)
	}
	return n
}

// IsStripped reports whether a cached Execution lacks its outputs.
func IsStripped(e *fnv1.Execution) bool {
	_, ok := e.Annotations[AnnotationStripped]
	return ok
}

// stripSecretData keeps only the metadata of the request Secrets (a
// caller's JWT, parts of a 10 MiB body): the operator needs to know they
// exist, not what they hold, and holding them would let a burst of large
// requests exhaust its memory. A Function's code Secret keeps its data,
// which the operator compares to keep it in sync.
func stripSecretData(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	s.ManagedFields = nil
	if _, code := s.Labels[LabelFunction]; !code {
		s.Data, s.StringData = nil, nil
	}
	return s, nil
}
