package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
)

// What the operator costs per execution and per stored record: the API
// writes of one run, and what its cache keeps of finished records.

// apiWrites logs the reconcilers' successful writes by namespace, as
// "verb Kind name" (verb "update/status" for the status subresource).
var apiWrites = &writeLog{byNamespace: map[string][]string{}}

type writeLog struct {
	mu          sync.Mutex
	byNamespace map[string][]string
}

func (l *writeLog) add(verb string, obj client.Object, err error) error {
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kind := reflect.TypeOf(obj).Elem().Name()
	l.byNamespace[obj.GetNamespace()] = append(l.byNamespace[obj.GetNamespace()], verb+" "+kind+" "+obj.GetName())
	return nil
}

// of lists the writes in a namespace but those of Functions (status,
// code), which are per Function, not per execution.
func (l *writeLog) of(ns string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, w := range l.byNamespace[ns] {
		if !strings.Contains(w, " Function ") {
			out = append(out, w)
		}
	}
	return out
}

// countingClient is c with its writes logged in apiWrites.
func countingClient(c client.Client) client.Client {
	return interceptor.NewClient(noWatch{c}, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return apiWrites.add("create", obj, c.Create(ctx, obj, opts...))
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return apiWrites.add("update", obj, c.Update(ctx, obj, opts...))
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			return apiWrites.add("patch", obj, c.Patch(ctx, obj, patch, opts...))
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			return apiWrites.add("delete", obj, c.Delete(ctx, obj, opts...))
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			return apiWrites.add("update/"+sub, obj, c.SubResource(sub).Update(ctx, obj, opts...))
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			return apiWrites.add("patch/"+sub, obj, c.SubResource(sub).Patch(ctx, obj, patch, opts...))
		},
	})
}

// noWatch lets a manager's client be intercepted (the interceptor wants a
// client.WithWatch); the reconcilers never watch through it.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("not supported")
}

// An ordinary execution, owned by its Function from the start (as the
// event and schedule controllers and the REST facade make them), costs the
// operator at most 6 API writes, Events included: the Job, three statuses
// (waiting, processing, completed), the Completed Event and the Job's
// deletion. Request Secrets add only their deletion when the facade made
// them (TestRequestSecretsGoOnceTheRecordIsWritten).
func TestOneExecutionCostsAtMostSixWrites(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	defer func() { t.Logf("writes: %q, events: %q", apiWrites.of(ns), eventReasons(t, ns, "run")) }()
	fn := createFunction(t, ns, "fn", nil)
	waitForReady(t, ns, "fn")
	createExecution(t, ns, "run", "fn", func(e *fnv1.Execution) {
		e.OwnerReferences = []metav1.OwnerReference{{APIVersion: fnv1.GroupVersion.String(), Kind: "Function", Name: fn.Name, UID: fn.UID}}
	})
	job := waitForJob(t, ns, "run")
	waitForStatus(t, ns, "run", fnv1.PhaseWaiting)
	pod := startRunning(t, job)
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(200, "ok", "out\n", "")))
	waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	waitForGone(t, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: job.Name, Namespace: ns}})
	g.Eventually(func() []string { return eventReasons(t, ns, "run") }, eventually, poll).Should(ConsistOf(fnv1.ReasonCompleted))

	want := []string{"create Job run", "update/status Execution run", "update/status Execution run", "update/status Execution run", "delete Job run"}
	g.Consistently(func() []string { return apiWrites.of(ns) }, 2*time.Second, poll).Should(ConsistOf(want))
	g.Expect(eventReasons(t, ns, "run")).To(HaveLen(1))
	g.Expect(len(apiWrites.of(ns)) + len(eventReasons(t, ns, "run"))).To(BeNumerically("<=", 6))
}

// A finished Execution with large outputs is kept trimmed in the operator's
// cache, yet nothing the operator does loses them: the record on the API
// server and the payload of its update event are whole.
func TestFinishedRecordIsTrimmedOnlyInTheCache(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", nil)
	createFunction(t, ns, "watcher", func(f *fnv1.Function) { f.Spec.Events = []string{"functions.fn.executions.*.update"} })
	waitForReady(t, ns, "fn", "watcher")
	createExecution(t, ns, "run", "fn", nil)
	pod := startPod(t, waitForJob(t, ns, "run"))
	stdout := strings.Repeat("x", 4096)
	setFunctionState(t, pod, corev1.PodSucceeded, terminatedWith(t, result(200, "ok", stdout, "")))
	waitForStatus(t, ns, "run", fnv1.PhaseCompleted)

	cached := &fnv1.Execution{}
	g.Eventually(func() bool {
		return mgrClient.Get(bg, types.NamespacedName{Namespace: ns, Name: "run"}, cached) == nil && kube.IsStripped(cached)
	}, eventually, poll).Should(BeTrue(), "the cache trims a finished record with large outputs")
	g.Expect(cached.Status.Stdout).To(BeEmpty())
	g.Expect(cached.Spec.Data).To(BeEmpty())
	g.Expect(cached.Status.Status).To(Equal(fnv1.PhaseCompleted))

	// The reconciles of the trimmed copy (the Job's deletion wakes one)
	// write nothing back.
	g.Consistently(func() string { return getExecution(t, ns, "run").Status.Stdout }, 2*time.Second, poll).Should(Equal(stdout))
	live := getExecution(t, ns, "run")
	g.Expect(live.Spec.Data).To(Equal("hello data"))
	g.Expect(live.Annotations).NotTo(HaveKey(kube.AnnotationStripped))

	var payload fnv1.Execution
	g.Eventually(func() fnv1.ExecutionPhase {
		for _, e := range executionsOf(t, ns, "watcher") {
			if e.Spec.Event == "functions.fn.executions.run.update" && json.Unmarshal([]byte(e.Spec.EventData), &payload) == nil &&
				payload.Status.Status == fnv1.PhaseCompleted {
				return payload.Status.Status
			}
		}
		return ""
	}, eventually, poll).Should(Equal(fnv1.PhaseCompleted))
	g.Expect(payload.Status.Stdout).To(Equal(stdout), "the payload carries the outputs")
	g.Expect(payload.Spec.Data).To(Equal("hello data"))
	g.Expect(payload.Annotations).NotTo(HaveKey(kube.AnnotationStripped))
}

// The request's Secrets (the caller's JWT, the parts of a large body) go as
// soon as the record is written: those the REST facade makes just after the
// Execution, owned by it from the start (so adopting them costs no write),
// and one made by hand, labelled for the Execution but owned by nothing,
// which it adopts. The operator's cache never holds their data, only that
// of code Secrets.
func TestRequestSecretsGoOnceTheRecordIsWritten(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	createFunction(t, ns, "fn", func(f *fnv1.Function) {
		f.Spec.Command, f.Spec.Entrypoint = []string{"sh"}, "main.sh"
		f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo hi"}}
	})
	createSecret := func(name, key string, owners []metav1.OwnerReference) {
		g.Expect(k8s.Create(bg, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: requestSecretLabels("run"), OwnerReferences: owners},
			StringData: map[string]string{key: "secret " + name},
		})).To(Succeed())
	}
	createSecret("run-body-1", contract.BodySecretKey, nil)
	exec := createExecution(t, ns, "run", "fn", func(e *fnv1.Execution) {
		e.Spec.Data, e.Spec.JWTSecretName, e.Spec.BodySecrets = "", "run-jwt", []string{"run-body-0", "run-body-1"}
	})
	owner := []metav1.OwnerReference{{APIVersion: fnv1.GroupVersion.String(), Kind: "Execution", Name: exec.Name, UID: exec.UID}}
	createSecret("run-jwt", contract.JWTSecretKey, owner)
	createSecret("run-body-0", contract.BodySecretKey, owner)
	secrets := []string{"run-jwt", "run-body-0", "run-body-1"}
	job := waitForJob(t, ns, "run")

	cachedData := func(name string) func() (map[string][]byte, error) {
		return func() (map[string][]byte, error) {
			s := &corev1.Secret{}
			err := mgrClient.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, s)
			return s.Data, err
		}
	}
	g.Eventually(cachedData("run-jwt"), eventually, poll).Should(BeEmpty(), "no caller JWT in the operator's memory")
	g.Eventually(cachedData("fn-code"), eventually, poll).ShouldNot(BeEmpty(), "code Secrets keep their data: the operator syncs it")

	setFunctionState(t, startPod(t, job), corev1.PodSucceeded, terminatedWith(t, result(200, "ok", "", "")))
	waitForStatus(t, ns, "run", fnv1.PhaseCompleted)
	for _, name := range secrets {
		waitForGone(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	}
	g.Expect(getExecution(t, ns, "run").Status.StatusCode).To(Equal(int32(200)))
	secretWrites := func() []string {
		var out []string
		for _, w := range apiWrites.of(ns) {
			if strings.Contains(w, " Secret run-") {
				out = append(out, w)
			}
		}
		return out
	}
	g.Consistently(secretWrites, time.Second, poll).Should(ConsistOf(
		"patch Secret run-body-1", "delete Secret run-jwt", "delete Secret run-body-0", "delete Secret run-body-1"))
}

// The status write that would only note the Job's new pod is saved; any
// other change while waiting is written.
func TestOnlyPodAppeared(t *testing.T) {
	waiting := fnv1.ExecutionStatus{Status: fnv1.PhaseWaiting, JobName: "run"}
	withPod := fnv1.ExecutionStatus{Status: fnv1.PhaseWaiting, JobName: "run", PodName: "run-abcde"}
	pod := &corev1.Pod{}
	stuck := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: functionContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}}}
	for name, tc := range map[string]struct {
		recorded, next fnv1.ExecutionStatus
		pod            *corev1.Pod
		want           bool
	}{
		"the pod appeared":          {waiting, withPod, pod, true},
		"the pod is stuck":          {waiting, withPod, stuck, false},
		"the function started":      {waiting, fnv1.ExecutionStatus{Status: fnv1.PhaseProcessing, JobName: "run", PodName: "run-abcde"}, pod, false},
		"the job was just made":     {fnv1.ExecutionStatus{}, waiting, nil, false},
		"the pod was recorded":      {withPod, withPod, pod, false},
		"waiting for the function":  {fnv1.ExecutionStatus{Status: fnv1.PhaseWaiting}, waiting, nil, false},
		"another job (never equal)": {waiting, fnv1.ExecutionStatus{Status: fnv1.PhaseWaiting, JobName: "other"}, pod, false},
	} {
		if got := onlyPodAppeared(tc.recorded, tc.next, tc.pod); got != tc.want {
			t.Errorf("%s: onlyPodAppeared = %v, want %v", name, got, tc.want)
		}
	}
}
