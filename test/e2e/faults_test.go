//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// faultGoal is how soon after a pod fault the record should say failed.
// The test logs the measured time and flags a miss, but only fails when
// the execution is stuck (eventually): the machine is shared and loaded.
const faultGoal = 10 * time.Second

// faultCase is one pod fault: a Function "fn" made to meet it, and the
// record it must end with.
type faultCase struct {
	name string
	// function creates the Function "fn" in ns.
	function func(t *testing.T, ns string)
	// inject causes the fault once the function runs, and returns when it
	// did. nil: the fault comes by itself, and faultSeen tells it among the
	// changes of the namespace's pods and Jobs.
	inject    func(t *testing.T, ns string, exec *fnv1.Execution) time.Time
	faultSeen func(obj client.Object) bool
	fault     string // how the fault is named in the log

	reason   string
	message  []string // in the message, which is also in stderr unless ownStderr
	stderr   []string // in stderr
	exitCode *int32
	// ownStderr: the record keeps the function's stderr (it reported a
	// result) and the message explains its exit code instead.
	ownStderr bool
}

// TestFaultPodFaults drives each pod fault of a function run on the real
// node, and checks that it ends failed with a reason and a message a user
// understands, status code 500 and the message in stderr. It logs the time
// from the fault (as the test saw it: its own action, or the watch event
// that showed it) to the failed record, for docs/reliability.md.
func TestFaultPodFaults(t *testing.T) {
	cases := []faultCase{
		{
			name: "pod deleted mid-run",
			function: func(t *testing.T, ns string) {
				shellFunction(t, ns, "fn", `echo sleeping; sleep 60`, 120)
			},
			inject: func(t *testing.T, ns string, exec *fnv1.Execution) time.Time {
				at := time.Now()
				NewWithT(t).Expect(k8s.Delete(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: exec.Status.PodName, Namespace: ns}})).To(Succeed())
				return at
			},
			fault:  "kubectl delete pod",
			reason: fnv1.ReasonPodLost, message: []string{"pod run-", "deleted"},
		},
		{
			name: "container OOM-killed",
			function: func(t *testing.T, ns string) {
				// dd reads 64 MiB into one buffer: four times the limit.
				createFunction(t, ns, "fn", fnv1.FunctionSpec{
					Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 30,
					Code:      &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo allocating\nexec dd if=/dev/zero of=/dev/null bs=64M count=1\n"}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}},
				})
			},
			faultSeen: func(obj client.Object) bool {
				cs := faultFunctionStatus(obj)
				return cs != nil && cs.State.Terminated != nil && cs.State.Terminated.Reason == "OOMKilled"
			},
			fault:  "container terminated OOMKilled",
			reason: fnv1.ReasonOOMKilled, message: []string{"ran out of memory", "16Mi", "OOMKilled"},
		},
		{
			name: "image that does not exist",
			function: func(t *testing.T, ns string) {
				createFunction(t, ns, "fn", fnv1.FunctionSpec{
					Image: "kfn.dev/does-not-exist:1", Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 10,
					Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo never"}},
				})
			},
			faultSeen: func(obj client.Object) bool {
				cs := faultFunctionStatus(obj)
				return cs != nil && cs.State.Waiting != nil &&
					(cs.State.Waiting.Reason == "ErrImagePull" || cs.State.Waiting.Reason == "ImagePullBackOff")
			},
			fault:  "ErrImagePull",
			reason: fnv1.ReasonImagePullFailed, message: []string{"kfn.dev/does-not-exist:1", "cannot be pulled", "ErrImagePull"},
		},
		{
			name: "command not found",
			function: func(t *testing.T, ns string) {
				createFunction(t, ns, "fn", fnv1.FunctionSpec{
					Image: busybox, Command: []string{"kfn-no-such-command"}, Entrypoint: "main.sh", Timeout: 10,
					Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo never"}},
				})
			},
			faultSeen: faultFunctionEnded,
			fault:     "container terminated",
			reason:    fnv1.ReasonFunctionFailed, exitCode: ptr.To[int32](127), ownStderr: true,
			message: []string{"exit code 127: a command was not found or could not be started"},
			stderr:  []string{"cannot start the command", `"kfn-no-such-command": executable file not found`},
		},
		{
			name: "command not found in the code",
			function: func(t *testing.T, ns string) {
				shellFunction(t, ns, "fn", "echo starting\nkfn-no-such-tool --version\n", 10)
			},
			faultSeen: faultFunctionEnded,
			fault:     "container terminated",
			reason:    fnv1.ReasonFunctionFailed, exitCode: ptr.To[int32](127), ownStderr: true,
			message: []string{"exit code 127: a command was not found or could not be started"},
			stderr:  []string{"kfn-no-such-tool: not found"},
		},
		{
			// The Job's deadline (timeout + startup grace) passes while the
			// pod is still Pending: a full node (the 200-execution burst on
			// this 110-pod node), here a request no node can hold.
			name: "job deadline while the pod is pending",
			function: func(t *testing.T, ns string) {
				createFunction(t, ns, "fn", fnv1.FunctionSpec{
					Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 1,
					Code:      &fnv1.CodeSource{Inline: map[string]string{"main.sh": "echo never"}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}},
				})
			},
			faultSeen: func(obj client.Object) bool {
				switch o := obj.(type) {
				case *corev1.Pod:
					return o.DeletionTimestamp != nil
				case *batchv1.Job:
					return faultDeadlineCondition(o) != nil
				}
				return false
			},
			fault:  "Job controller kills the pod at the deadline",
			reason: fnv1.ReasonTimedOut, message: []string{"timed out after 1s", "never started", "Unschedulable", "Insufficient cpu"},
		},
		{
			name: "job deleted by hand mid-run",
			function: func(t *testing.T, ns string) {
				shellFunction(t, ns, "fn", `echo sleeping; sleep 60`, 120)
			},
			inject: faultDeleteJob(metav1.DeletePropagationBackground),
			fault:  "kubectl delete job",
			reason: fnv1.ReasonJobLost, message: []string{"job run", "deleted"},
		},
		{
			name: "job deleted by hand mid-run, foreground",
			function: func(t *testing.T, ns string) {
				shellFunction(t, ns, "fn", `echo sleeping; sleep 60`, 120)
			},
			inject: faultDeleteJob(metav1.DeletePropagationForeground),
			fault:  "kubectl delete job --cascade=foreground",
			reason: fnv1.ReasonJobLost, message: []string{"job run", "deleted"},
		},
	}

	var mu sync.Mutex
	var lines []string
	t.Cleanup(func() {
		sort.Strings(lines)
		t.Logf("fault → failed record, measured on this node:\n%s", strings.Join(lines, "\n"))
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line := runFaultCase(t, tc)
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		})
	}
}

func runFaultCase(t *testing.T, tc faultCase) string {
	g := NewWithT(t)
	ns := newNamespace(t)
	seen := faultWatchNamespace(t, ns)
	tc.function(t, ns)
	created := time.Now()
	execute(t, ns, "run", "fn", "")

	var faultAt time.Time
	if tc.inject != nil {
		faultAt = tc.inject(t, ns, waitFor(t, ns, "run", fnv1.PhaseProcessing))
	}
	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	failedAt, ok := seen.first(func(obj client.Object) bool {
		e, ok := obj.(*fnv1.Execution)
		return ok && e.Status.Status == fnv1.PhaseFailed
	})
	if !ok {
		failedAt = time.Now()
	}
	if tc.inject == nil {
		faultAt, ok = seen.first(tc.faultSeen)
		g.Expect(ok).To(BeTrue(), "the fault (%s) was never seen", tc.fault)
	}

	st := exec.Status
	t.Logf("%s: %s %q, stderr %q", st.Status, st.Reason, st.Message, st.Stderr)
	g.Expect(st.Status).To(Equal(fnv1.PhaseFailed))
	g.Expect(st.StatusCode).To(Equal(int32(500)))
	g.Expect(st.Reason).To(Equal(tc.reason))
	for _, words := range tc.message {
		g.Expect(st.Message).To(ContainSubstring(words))
	}
	for _, words := range tc.stderr {
		g.Expect(st.Stderr).To(ContainSubstring(words))
	}
	if !tc.ownStderr {
		g.Expect(st.Stderr).To(ContainSubstring(st.Message), "the message is in stderr")
	}
	if tc.exitCode != nil {
		g.Expect(st.ExitCode).To(Equal(tc.exitCode))
	}

	took := failedAt.Sub(faultAt)
	line := fmt.Sprintf("%-40s %-16s fault (%s) → failed %.3fs; created → failed %.3fs", tc.name, st.Reason, tc.fault,
		took.Seconds(), failedAt.Sub(created).Seconds())
	if deadline, ok := seen.jobDeadline(); ok {
		line += fmt.Sprintf("; Job deadline (start + activeDeadlineSeconds, whole seconds) → failed %.3fs", failedAt.Sub(deadline).Seconds())
	}
	if took > faultGoal {
		line += fmt.Sprintf("  OVER THE %v GOAL", faultGoal)
	}
	t.Log(line)
	return line
}

func faultDeleteJob(policy metav1.DeletionPropagation) func(t *testing.T, ns string, exec *fnv1.Execution) time.Time {
	return func(t *testing.T, ns string, exec *fnv1.Execution) time.Time {
		at := time.Now()
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: exec.Status.JobName, Namespace: ns}}
		NewWithT(t).Expect(k8s.Delete(bg, job, client.PropagationPolicy(policy))).To(Succeed())
		return at
	}
}

func faultFunctionStatus(obj client.Object) *corev1.ContainerStatus {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == "function" {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func faultFunctionEnded(obj client.Object) bool {
	cs := faultFunctionStatus(obj)
	return cs != nil && cs.State.Terminated != nil
}

func faultDeadlineCondition(job *batchv1.Job) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobFailureTarget || c.Type == batchv1.JobFailed) && c.Reason == batchv1.JobReasonDeadlineExceeded {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// faultSighting is an object as a watch delivered it, and when.
type faultSighting struct {
	at  time.Time
	obj client.Object
}

// faultWatch keeps every change of the Executions, Jobs and pods of a
// namespace, timed by the test's clock as the watch delivers them: a
// polling test would miss the states that last a moment (the pod of a
// recorded execution is deleted at once).
type faultWatch struct {
	mu   sync.Mutex
	seen []faultSighting
}

var (
	faultWatcherOnce sync.Once
	faultWatcher     client.WithWatch
	faultWatcherErr  error
)

func faultWatchNamespace(t *testing.T, ns string) *faultWatch {
	t.Helper()
	faultWatcherOnce.Do(func() {
		cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
		if err != nil {
			faultWatcherErr = err
			return
		}
		faultWatcher, faultWatcherErr = client.NewWithWatch(cfg, client.Options{Scheme: k8s.Scheme()})
	})
	g := NewWithT(t)
	g.Expect(faultWatcherErr).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(bg)
	w := &faultWatch{}
	var wg sync.WaitGroup
	for _, list := range []client.ObjectList{&fnv1.ExecutionList{}, &batchv1.JobList{}, &corev1.PodList{}} {
		events, err := faultWatcher.Watch(ctx, list, client.InNamespace(ns))
		g.Expect(err).NotTo(HaveOccurred())
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer events.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-events.ResultChan():
					if !ok {
						return
					}
					obj, isObj := ev.Object.(client.Object)
					if !isObj || ev.Type == watch.Error || ev.Type == watch.Bookmark {
						continue
					}
					w.mu.Lock()
					w.seen = append(w.seen, faultSighting{time.Now(), obj})
					w.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

// first is when an object matching match was first seen.
func (w *faultWatch) first(match func(client.Object) bool) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if match(s.obj) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// jobDeadline is when the Job's deadline passed by its own start time, if
// the Job hit it.
func (w *faultWatch) jobDeadline() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		job, ok := s.obj.(*batchv1.Job)
		if ok && faultDeadlineCondition(job) != nil && job.Status.StartTime != nil && job.Spec.ActiveDeadlineSeconds != nil {
			return job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second), true
		}
	}
	return time.Time{}, false
}
