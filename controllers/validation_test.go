package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// The CRD schema and its CEL rules reject bad objects with a message that
// says what is wrong; these run against the real API server.

func TestFunctionValidation(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate func(*fnv1.Function)
		want   string
	}{
		"timeout too small": {func(f *fnv1.Function) { f.Spec.Timeout = -1 }, "spec.timeout"},
		"timeout too large": {func(f *fnv1.Function) { f.Spec.Timeout = 901 }, "should be less than or equal to 900"},
		"image and runtime": {func(f *fnv1.Function) { f.Spec.Runtime = "node-20" }, "exactly one of runtime or image must be set"},
		"neither":           {func(f *fnv1.Function) { f.Spec.Image = "" }, "exactly one of runtime or image must be set"},
		"bad role":          {func(f *fnv1.Function) { f.Spec.Execute = []string{"role:all"} }, "spec.execute[0]"},
		"wildcard role":     {func(f *fnv1.Function) { f.Spec.Execute = []string{"*"} }, "spec.execute[0]"},
		"reserved variable": {func(f *fnv1.Function) {
			f.Spec.Variables = []fnv1.Variable{{Name: "APPWRITE_FUNCTION_ID", Value: ptr.To("x")}}
		}, "reserved"},
		"variable value+from": {func(f *fnv1.Function) { f.Spec.Variables = []fnv1.Variable{{Name: "A"}} }, "exactly one of value or valueFrom"},
		"two code sources": {func(f *fnv1.Function) {
			f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"a": "b"}, ConfigMapRef: &corev1.LocalObjectReference{Name: "c"}}
		}, "exactly one of inline, secretRef or configMapRef"},
		"file path leaving the code folder": {func(f *fnv1.Function) {
			f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"../etc/passwd": "x"}}
		}, "file paths are relative"},
		"file path with a dot folder": {func(f *fnv1.Function) {
			f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"lib/./x.js": "x"}}
		}, "file paths are relative"},
		"absolute file path": {func(f *fnv1.Function) {
			f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"/etc/passwd": "x"}}
		}, "file paths are relative"},
		"unknown contract":           {func(f *fnv1.Function) { f.Spec.Contract = "v9" }, `Unsupported value: "v9"`},
		"time zone without schedule": {func(f *fnv1.Function) { f.Spec.TimeZone = "Europe/Berlin" }, "timeZone needs a schedule"},
	} {
		t.Run(name, func(t *testing.T) {
			fn := &fnv1.Function{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "fn-", Namespace: ns},
				Spec:       fnv1.FunctionSpec{Image: "busybox:test", Command: []string{"true"}},
			}
			tc.mutate(fn)
			err := k8s.Create(bg, fn)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestFunctionDefaults(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: ns},
		Spec:       fnv1.FunctionSpec{Image: "busybox:test", Command: []string{"true"}, Execute: []string{"any", "user:abc", "team:t1/owner", "users/verified"}},
	}
	g.Expect(k8s.Create(bg, fn)).To(Succeed())
	g.Expect(fn.Spec.Timeout).To(Equal(int32(15)))
	g.Expect(fn.Spec.Enabled).To(Equal(ptr.To(true)))
	g.Expect(fn.Spec.Logging).To(Equal(ptr.To(true)))
}

func TestExecutionValidation(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate func(*fnv1.Execution)
		want   string
	}{
		"unknown trigger":       {func(e *fnv1.Execution) { e.Spec.Trigger = "webhook" }, `Unsupported value: "webhook"`},
		"no function":           {func(e *fnv1.Execution) { e.Spec.FunctionName = "" }, "spec.functionName"},
		"data and body":         {func(e *fnv1.Execution) { e.Spec.Body = "b" }, "data (Appwrite 1.0) and body (Appwrite 1.4+) are alternatives"},
		"unknown method":        {func(e *fnv1.Execution) { e.Spec.Method = "TRACE" }, `Unsupported value: "TRACE"`},
		"body secrets and data": {func(e *fnv1.Execution) { e.Spec.BodySecrets = []string{"part-0"} }, "bodySecrets carry a body too large for body"},
		"data over 8192":        {func(e *fnv1.Execution) { e.Spec.Data = string(make([]byte, 8193)) }, "spec.data"},
	} {
		t.Run(name, func(t *testing.T) {
			exec := &fnv1.Execution{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "ex-", Namespace: ns},
				Spec:       fnv1.ExecutionSpec{FunctionName: "fn", Data: "d"},
			}
			tc.mutate(exec)
			NewWithT(t).Expect(k8s.Create(bg, exec)).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestExecutionSpecIsImmutable(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	exec := createExecution(t, ns, "run", "fn", nil)
	g.Expect(exec.Spec.Trigger).To(Equal(fnv1.TriggerHTTP), "trigger defaults to http")

	// A patch carries no resourceVersion, so only validation can refuse it.
	change := client.MergeFrom(exec.DeepCopy())
	exec.Spec.Data = "changed"
	g.Expect(k8s.Patch(bg, exec, change)).To(MatchError(ContainSubstring("spec is immutable")))

	// Metadata stays editable: labels are how users organise records.
	fresh := getExecution(t, ns, "run")
	patch := client.MergeFrom(fresh.DeepCopy())
	fresh.Labels = map[string]string{"team": "a"}
	g.Expect(k8s.Patch(bg, fresh, patch)).To(Succeed())
}
