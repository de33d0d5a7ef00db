package controllers

import (
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

func TestEventPatterns(t *testing.T) {
	execCreate := eventSegments{"functions", "fn1", "executions", "run-1", "create"}
	cmUpdate := eventSegments{"configmaps", "default", "app.config", "update"}
	fnDelete := eventSegments{"functions", "fn1", "delete"}
	for _, tc := range []struct {
		pattern string
		event   eventSegments
		want    bool
	}{
		{"functions.fn1.executions.run-1.create", execCreate, true},
		{"functions.*.executions.*.create", execCreate, true},
		{"functions.*.executions.*.*", execCreate, true},
		{"functions.*.executions.*", execCreate, true},
		{"functions.fn1.executions.*.update", execCreate, false},
		{"functions.fn2.executions.*.create", execCreate, false},
		{"functions.*", execCreate, false},
		{"functions.*.create", execCreate, false},
		{"*.*.*.*.*", execCreate, true},
		{"functions.fn*.executions.*.create", execCreate, false},
		{"functions.*.delete", fnDelete, true},
		{"functions.*", fnDelete, true},
		{"functions.fn1.update", fnDelete, false},
		{"configmaps.default.app.config.update", cmUpdate, true},
		{"configmaps.default.*.update", cmUpdate, true},
		{"configmaps.*.*", cmUpdate, true},
		{"configmaps.default.app.update", cmUpdate, false},
		{"configmaps.default.app.*.update", cmUpdate, false},
		{"configmaps.other.*.update", cmUpdate, false},
		{"configmaps.default.app.config.update.more", cmUpdate, false},
		{"", cmUpdate, false},
	} {
		NewWithT(t).Expect(matchEvent(tc.pattern, tc.event)).To(Equal(tc.want), "%s ~ %s", tc.pattern, tc.event)
	}
}

func executionsOf(t *testing.T, ns, function string) []fnv1.Execution {
	t.Helper()
	var list fnv1.ExecutionList
	NewWithT(t).Expect(k8s.List(bg, &list, client.InNamespace(ns))).To(Succeed())
	var out []fnv1.Execution
	for _, e := range list.Items {
		if e.Spec.FunctionName == function {
			out = append(out, e)
		}
	}
	return out
}

func countOf(t *testing.T, ns, function string) func() int {
	return func() int { return len(executionsOf(t, ns, function)) }
}

func TestConfigMapChangeTriggersOneExecution(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "on-settings", func(f *fnv1.Function) {
		f.Spec.Events = []string{"configmaps." + ns + ".app.settings.update"}
	})
	createFunction(t, ns, "on-any-create", func(f *fnv1.Function) {
		f.Spec.Events = []string{"configmaps.*.*.create"}
	})
	waitForReady(t, ns, "on-settings", "on-any-create")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app.settings", Namespace: ns}, Data: map[string]string{"mode": "slow"}}
	g.Expect(k8s.Create(bg, cm)).To(Succeed())
	g.Eventually(countOf(t, ns, "on-any-create"), eventually, poll).Should(Equal(1))
	g.Expect(executionsOf(t, ns, "on-any-create")[0].Spec.Event).To(Equal("configmaps." + ns + ".app.settings.create"))
	g.Expect(executionsOf(t, ns, "on-settings")).To(BeEmpty(), "a creation is no update")

	cm.Data["mode"] = "fast"
	g.Expect(k8s.Update(bg, cm)).To(Succeed())
	g.Eventually(countOf(t, ns, "on-settings"), eventually, poll).Should(Equal(1))
	g.Consistently(countOf(t, ns, "on-settings"), 2*time.Second, poll).Should(Equal(1))
	g.Expect(countOf(t, ns, "on-any-create")()).To(Equal(1))

	exec := executionsOf(t, ns, "on-settings")[0]
	g.Expect(exec.Spec.Trigger).To(Equal(fnv1.TriggerEvent))
	g.Expect(exec.Spec.Event).To(Equal("configmaps." + ns + ".app.settings.update"))
	var payload corev1.ConfigMap
	g.Expect(json.Unmarshal([]byte(exec.Spec.EventData), &payload)).To(Succeed())
	g.Expect(payload.Data).To(HaveKeyWithValue("mode", "fast"))
	g.Eventually(func() []string { return eventReasons(t, ns, "on-settings") }, eventually, poll).Should(ContainElement("EventTriggered"))

	// The same change delivered again (a replay) creates nothing new.
	r := &EventReconciler{Client: mgrClient, Scheme: kube.NewScheme(), Recorder: mgrRecorder, Clock: testClock}
	g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
	old := cm.DeepCopy()
	old.ResourceVersion = "1"
	firings := r.firings(bg, describeResource("configmaps"), "update", cm, old)
	g.Expect(firings).To(HaveLen(1))
	g.Expect(firings[0].Execution).To(Equal(exec.Name))
	_, err := r.Reconcile(bg, firings[0])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(countOf(t, ns, "on-settings")()).To(Equal(1))

	// Other namespaces do not hear it.
	other := newNamespace(t)
	createFunction(t, other, "elsewhere", func(f *fnv1.Function) { f.Spec.Events = []string{"configmaps.*.*.update"} })
	waitForReady(t, other, "elsewhere")
	cm.Data["mode"] = "faster"
	g.Expect(k8s.Update(bg, cm)).To(Succeed())
	g.Eventually(countOf(t, ns, "on-settings"), eventually, poll).Should(Equal(2))
	g.Consistently(countOf(t, other, "elsewhere"), time.Second, poll).Should(Equal(0))
}

func TestAnotherFunctionsExecutionTriggersOneExecution(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "source", nil)
	createFunction(t, ns, "listener", func(f *fnv1.Function) {
		f.Spec.Events = []string{"functions.source.executions.*.create"}
	})
	waitForReady(t, ns, "source", "listener")
	createExecution(t, ns, "run-1", "source", nil)
	g.Eventually(countOf(t, ns, "listener"), eventually, poll).Should(Equal(1))
	// run-1 moves on to waiting (an update event): the listener wants creates only.
	waitForStatus(t, ns, "run-1", fnv1.PhaseWaiting)
	g.Consistently(countOf(t, ns, "listener"), 2*time.Second, poll).Should(Equal(1))

	exec := executionsOf(t, ns, "listener")[0]
	g.Expect(exec.Spec.Event).To(Equal("functions.source.executions.run-1.create"))
	g.Expect(exec.Spec.Trigger).To(Equal(fnv1.TriggerEvent))
	g.Expect(exec.Spec.EventData).To(ContainSubstring(`"name":"run-1"`))
	g.Expect(exec.Annotations).To(HaveKeyWithValue(annotationEventDepth, "1"))
	g.Expect(exec.OwnerReferences).To(ContainElement(HaveField("Name", "listener")))
}

func TestFunctionIsNotTriggeredByItsOwnExecutions(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "narcissus", func(f *fnv1.Function) {
		f.Spec.Events = []string{"functions.*.executions.*", "functions.narcissus.executions.*.create"}
	})
	waitForReady(t, ns, "narcissus")
	createExecution(t, ns, "first", "narcissus", nil)
	waitForStatus(t, ns, "first", fnv1.PhaseWaiting)
	g.Consistently(countOf(t, ns, "narcissus"), 3*time.Second, poll).Should(Equal(1))
}

// Two functions listening to each other's executions: the chain stops
// after maxEventDepth event-triggered executions.
func TestEventChainsStop(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "ping", func(f *fnv1.Function) { f.Spec.Events = []string{"functions.pong.executions.*.create"} })
	createFunction(t, ns, "pong", func(f *fnv1.Function) { f.Spec.Events = []string{"functions.ping.executions.*.create"} })
	waitForReady(t, ns, "ping", "pong")
	createExecution(t, ns, "serve", "ping", nil)
	total := func() int { return len(executionNames(t, ns)) }
	g.Eventually(total, eventually, poll).Should(Equal(1 + maxEventDepth))
	g.Consistently(total, 3*time.Second, poll).Should(Equal(1 + maxEventDepth))
	g.Eventually(func() []string { return eventReasons(t, ns, "ping") }, eventually, poll).Should(ContainElement("EventDropped"))
}

func TestFunctionEvents(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "auditor", func(f *fnv1.Function) { f.Spec.Events = []string{"functions.*.update", "functions.*.delete"} })
	createFunction(t, ns, "target", nil)
	waitForReady(t, ns, "auditor", "target")
	g.Consistently(countOf(t, ns, "auditor"), time.Second, poll).Should(Equal(0), "creation is not subscribed")

	fn := getFunction(t, ns, "target")
	fn.Spec.Timeout = 7
	g.Expect(k8s.Update(bg, fn)).To(Succeed())
	g.Eventually(countOf(t, ns, "auditor"), eventually, poll).Should(Equal(1))
	// Status writes (the Function controller's) are not updates.
	g.Consistently(countOf(t, ns, "auditor"), 2*time.Second, poll).Should(Equal(1))

	g.Expect(k8s.Delete(bg, fn)).To(Succeed())
	g.Eventually(func() []string {
		var events []string
		for _, e := range executionsOf(t, ns, "auditor") {
			events = append(events, e.Spec.Event)
		}
		return events
	}, eventually, poll).Should(ConsistOf("functions.target.update", "functions.target.delete"))
}
