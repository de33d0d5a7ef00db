package kube

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

func execution(phase fnv1.ExecutionPhase, output string) *fnv1.Execution {
	return &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{
			Name:          "e1",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations:   map[string]string{lastAppliedAnnotation: "{}"},
		},
		Spec:   fnv1.ExecutionSpec{FunctionName: "f", Body: "request", EventData: "{}"},
		Status: fnv1.ExecutionStatus{Status: phase, Response: output, Stdout: output},
	}
}

func transform(t *testing.T, reader Reader, e *fnv1.Execution) *fnv1.Execution {
	t.Helper()
	out, err := executionTransform(reader)(e)
	if err != nil {
		t.Fatal(err)
	}
	return out.(*fnv1.Execution)
}

func TestExecutionTransform(t *testing.T) {
	big := strings.Repeat("x", MaxCachedOutputBytes)
	tests := []struct {
		name         string
		reader       Reader
		in           *fnv1.Execution
		wantBody     bool
		wantOutputs  bool
		wantStripped bool
	}{
		{"operator keeps a live request", Operator, execution(fnv1.PhaseProcessing, big), true, true, false},
		{"operator drops a finished request", Operator, execution(fnv1.PhaseCompleted, "ok"), false, true, false},
		{"operator drops large finished outputs", Operator, execution(fnv1.PhaseFailed, big), false, false, true},
		{"facade never keeps the request", Facade, execution(fnv1.PhaseWaiting, big), false, true, false},
		{"facade keeps small finished outputs", Facade, execution(fnv1.PhaseCompleted, "ok"), false, true, false},
		{"facade drops large finished outputs", Facade, execution(fnv1.PhaseCompleted, big), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := transform(t, tt.reader, tt.in)
			// Idempotent: the informer may run it again on a stored object.
			out = transform(t, tt.reader, out)
			if out.ManagedFields != nil || out.Annotations[lastAppliedAnnotation] != "" {
				t.Errorf("managedFields or last-applied kept: %v %v", out.ManagedFields, out.Annotations)
			}
			if got := out.Spec.Body != ""; got != tt.wantBody {
				t.Errorf("body kept = %v, want %v", got, tt.wantBody)
			}
			if got := out.Status.Stdout != ""; got != tt.wantOutputs {
				t.Errorf("outputs kept = %v, want %v", got, tt.wantOutputs)
			}
			if got := IsStripped(out); got != tt.wantStripped {
				t.Errorf("IsStripped = %v, want %v", got, tt.wantStripped)
			}
			if out.Spec.FunctionName != "f" || out.Status.Status != tt.in.Status.Status {
				t.Errorf("identity or phase lost: %+v", out)
			}
		})
	}
}

func TestStripSecretDataKeepsCode(t *testing.T) {
	for _, tt := range []struct {
		labels   map[string]string
		wantData bool
	}{
		{map[string]string{LabelManagedBy: ManagedBy}, false},
		{map[string]string{LabelManagedBy: ManagedBy, LabelFunction: "f"}, true},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels}, Data: map[string][]byte{"body": []byte("x")}}
		out, _ := stripSecretData(s)
		if got := out.(*corev1.Secret).Data != nil; got != tt.wantData {
			t.Errorf("labels %v: data kept = %v, want %v", tt.labels, got, tt.wantData)
		}
	}
}

// One entry per kind: with two (keys are pointers) the cache would use
// either, and the operator could keep request Secrets' data after all.
func TestCacheOptionsHaveOneEntryPerKind(t *testing.T) {
	for _, reader := range []Reader{Operator, Facade} {
		kinds := map[string]int{}
		var secretTransform bool
		for obj, opts := range CacheOptions(reader).ByObject {
			kinds[fmt.Sprintf("%T", obj)]++
			if _, ok := obj.(*corev1.Secret); ok {
				secretTransform = opts.Transform != nil
			}
		}
		for kind, n := range kinds {
			if n != 1 {
				t.Errorf("reader %d: %d entries for %s", reader, n, kind)
			}
		}
		if want := reader == Operator; secretTransform != want {
			t.Errorf("reader %d: Secret transform set = %v, want %v", reader, secretTransform, want)
		}
	}
}
