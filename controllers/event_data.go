package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// maxEventData is the most spec.eventData holds (the CRD's maxLength, in
// characters; bytes are counted, which is never fewer).
const maxEventData = 65536

// eventData is the object as JSON for APPWRITE_FUNCTION_EVENT_DATA, without
// metadata.managedFields and the kubectl last-applied annotation (server
// bookkeeping, often larger than the object). When the JSON is still too
// big, whole top-level fields are left out, the largest first (never
// apiVersion, kind or metadata), and their names returned. As a last resort
// only the object's identity is kept.
func eventData(obj client.Object, scheme *runtime.Scheme) (data string, dropped []string) {
	obj = obj.DeepCopyObject().(client.Object)
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		// Typed objects from the cache carry no apiVersion and kind.
		if gvk, err := apiutil.GVKForObject(obj, scheme); err == nil {
			obj.GetObjectKind().SetGroupVersionKind(gvk)
		}
	}
	obj.SetManagedFields(nil)
	if a := obj.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		obj.SetAnnotations(a)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", []string{"*"}
	}
	if len(raw) <= maxEventData {
		return string(raw), nil
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", []string{"*"}
	}
	var names []string
	for name := range fields {
		if name != "apiVersion" && name != "kind" && name != "metadata" {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return len(fields[names[i]]) > len(fields[names[j]]) })
	size := len(raw)
	for _, name := range names {
		if size <= maxEventData {
			break
		}
		size -= len(fields[name]) + len(name) + 4 // "name":value,
		delete(fields, name)
		dropped = append(dropped, name)
	}
	if raw, err = json.Marshal(fields); err == nil && len(raw) <= maxEventData {
		return string(raw), dropped
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	identity := map[string]any{
		"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind,
		"metadata": map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace(), "uid": obj.GetUID(), "resourceVersion": obj.GetResourceVersion()},
	}
	raw, _ = json.Marshal(identity)
	return string(raw), append(dropped, "metadata")
}

// eventExecutionName is the Execution an event creates for a function:
// the same whenever the same change of the same object reaches the same
// function, so a replayed event fails with AlreadyExists instead of running
// twice.
func eventExecutionName(function string, obj client.Object, action string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{string(obj.GetUID()), obj.GetResourceVersion(), function, action}, "/")))
	return shortName(function+"-ev-"+hex.EncodeToString(sum[:])[:12], "", maxJobNameLength)
}

// eventDepth is how many events led to an Execution: 0 for one requested
// over HTTP or by a schedule.
func eventDepth(obj client.Object) int {
	e, ok := obj.(*fnv1.Execution)
	if !ok {
		return 0
	}
	d := 0
	for _, c := range e.Annotations[annotationEventDepth] {
		if c < '0' || c > '9' || d > 1000 {
			return maxEventDepth
		}
		d = d*10 + int(c-'0')
	}
	return d
}
