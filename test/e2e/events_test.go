//go:build e2e

package e2e

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// A ConfigMap change triggers a function on the real node: the chart's
// events.watchResources (set by hack/e2e.sh) grants the operator the watch.
func TestConfigMapChangeTriggersAFunction(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "on-settings", Namespace: ns},
		Spec: fnv1.FunctionSpec{
			Image: busybox, Command: []string{"sh", "-c", `echo "$APPWRITE_FUNCTION_TRIGGER $APPWRITE_FUNCTION_EVENT"`}, Timeout: 10,
			Events: []string{"configmaps." + ns + ".settings.update"},
		},
	}
	g.Expect(k8s.Create(bg, fn)).To(Succeed())
	// Events reach the functions the operator knows: wait until it has seen this one.
	g.Eventually(func() bool {
		g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(fn), fn)).To(Succeed())
		return meta.IsStatusConditionTrue(fn.Status.Conditions, fnv1.FunctionReady)
	}, eventually, poll).Should(BeTrue())
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"mode": "a"}}
	g.Expect(k8s.Create(bg, settings)).To(Succeed())
	settings.Data["mode"] = "b"
	g.Expect(k8s.Update(bg, settings)).To(Succeed())

	var execs fnv1.ExecutionList
	g.Eventually(func() []fnv1.Execution {
		g.Expect(k8s.List(bg, &execs, client.InNamespace(ns))).To(Succeed())
		return execs.Items
	}, eventually, poll).Should(HaveLen(1), "one update, one execution")
	exec := waitFor(t, ns, execs.Items[0].Name, fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Spec.Trigger).To(Equal(fnv1.TriggerEvent))
	g.Expect(exec.Status.Stdout).To(Equal("event configmaps." + ns + ".settings.update\n"))
	g.Expect(exec.Spec.EventData).To(ContainSubstring(`"mode":"b"`))
}
