package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Finished records are archived at once and their objects deleted after
// the keep-live; with the archive down nothing is deleted, and once it is
// back every record is archived, then deleted: nothing is lost.
func TestArchiveKeepsEveryRecord(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	pg := pgtest.Start(t)
	store, err := archive.Open(bg, pg.DSN(), 2)
	g.Expect(err).NotTo(HaveOccurred())
	defer store.Close()
	createFunction(t, ns, "fn", nil)
	finished := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	finish := func(name, stdout string) *fnv1.Execution {
		res := result(200, "response of "+name, stdout, "")
		res.StartedAt, res.FinishedAt = finished.Add(-250*time.Millisecond), finished
		return finishWith(t, ns, "fn", name, res)
	}
	want := map[string]*fnv1.Execution{
		"small": finish("small", "a line"),
		// Over what a cache keeps: read from the API server to archive it.
		"large": finish("large", strings.Repeat("log line\n", 500)),
	}
	clk := clocktesting.NewFakePassiveClock(finished.Add(30 * time.Minute))
	r := &ArchiveReconciler{Client: mgrClient, APIReader: k8s, Archive: store, KeepLive: time.Hour, Clock: clk}
	reconcile := func(name string) (ctrl.Result, error) {
		return r.Reconcile(bg, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	}
	archived := func(name string) func() bool {
		return func() bool {
			_, err := reconcile(name) // a no-op until the cache sees the record finished
			has, _ := store.Has(bg, want[name].UID)
			return err == nil && has
		}
	}
	g.Eventually(func() bool { return kube.IsStripped(cachedExecution(t, ns, "large")) }, eventually, poll).Should(BeTrue())

	for name := range want {
		g.Eventually(archived(name), eventually, poll).Should(BeTrue(), name)
		res, err := reconcile(name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.RequeueAfter).To(BeNumerically("~", 30*time.Minute, time.Second), "back when the keep-live is over")
		g.Expect(getExecution(t, ns, name).DeletionTimestamp).To(BeNil(), "%s: within the keep-live, the object stays", name)
	}

	// Archived records are not pruned by the Function controller, whatever
	// their age: only the archive controller deletes them.
	fr := &FunctionReconciler{Client: mgrClient, APIReader: k8s, Scheme: kube.NewScheme(), Recorder: mgrRecorder,
		Retention: time.Minute, Clock: clocktesting.NewFakePassiveClock(finished.Add(24 * time.Hour)), Archived: true}
	_, err = fr.Reconcile(bg, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "fn"}})
	g.Expect(err).NotTo(HaveOccurred())

	pg.Stop()
	clk.SetTime(finished.Add(2 * time.Hour))
	want["during"] = finish("during", "finished while the archive was down")
	for name := range want {
		g.Eventually(func() error { _, err := reconcile(name); return err }, eventually, poll).Should(HaveOccurred(), name)
		g.Expect(getExecution(t, ns, name).DeletionTimestamp).To(BeNil(), "%s: the archive is down, so the object stays", name)
	}

	pg.Restart()
	for name, exec := range want {
		_, err := reconcile(name)
		g.Expect(err).NotTo(HaveOccurred(), name)
		waitForGone(t, &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		got, err := store.Get(bg, ns, "fn", name)
		g.Expect(err).NotTo(HaveOccurred(), name)
		g.Expect(got.UID).To(Equal(exec.UID))
		g.Expect(got.Status.Status).To(Equal(fnv1.PhaseCompleted))
		g.Expect(got.Status.Response).To(Equal(exec.Status.Response), name)
		g.Expect(got.Status.Stdout).To(Equal(exec.Status.Stdout), name)
	}
}

func cachedExecution(t *testing.T, ns, name string) *fnv1.Execution {
	t.Helper()
	exec := &fnv1.Execution{}
	NewWithT(t).Expect(mgrClient.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, exec)).To(Succeed())
	return exec
}
