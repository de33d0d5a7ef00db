//go:build e2e

// Package e2e runs kfn on a real one-node cluster whose kubelet really starts
// pods (make cluster-up), with the operator deployed in the cluster from
// config/default. `make test-e2e` sets the cluster up and tears it down.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

const (
	busybox = "kfn.dev/busybox:test"
	// Pods really start here, so allow for a loaded 2-core machine.
	eventually = 90 * time.Second
	poll       = 200 * time.Millisecond
)

var (
	k8s client.Client
	bg  = context.Background()
)

func TestMain(m *testing.M) {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		fmt.Fprintln(os.Stderr, "KUBECONFIG is not set: run the end-to-end tests with `make test-e2e`")
		os.Exit(1)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The tests' clients log nothing worth reading; without a logger,
	// controller-runtime prints a stack trace saying so.
	ctrllog.SetLogger(logr.Discard())
	scheme := kube.NewScheme()
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "e2e-" + rand.String(6),
		// Function pods must pass the strictest Pod Security Standard.
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	NewWithT(t).Expect(k8s.Create(bg, ns)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(bg, ns) })
	return ns.Name
}

// createFunction creates the Function name in ns.
func createFunction(t *testing.T, ns, name string, spec fnv1.FunctionSpec) *fnv1.Function {
	t.Helper()
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
	NewWithT(t).Expect(k8s.Create(bg, fn)).To(Succeed())
	return fn
}

func shellFunction(t *testing.T, ns, name, script string, timeout int32) {
	t.Helper()
	createFunction(t, ns, name, fnv1.FunctionSpec{
		Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: timeout,
		Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": script}},
	})
}

func execute(t *testing.T, ns, name, function, data string) {
	t.Helper()
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       fnv1.ExecutionSpec{FunctionName: function, Data: data},
	}
	NewWithT(t).Expect(k8s.Create(bg, exec)).To(Succeed())
}

func waitFor(t *testing.T, ns, name string, phases ...fnv1.ExecutionPhase) *fnv1.Execution {
	t.Helper()
	return waitForWithin(t, ns, name, eventually, phases...)
}

// waitForWithin is waitFor with its own bound.
func waitForWithin(t *testing.T, ns, name string, bound time.Duration, phases ...fnv1.ExecutionPhase) *fnv1.Execution {
	t.Helper()
	exec := &fnv1.Execution{}
	NewWithT(t).Eventually(func() fnv1.ExecutionPhase {
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, exec); err != nil {
			return ""
		}
		return exec.Status.Status
	}, bound, poll).Should(BeElementOf(phases), "execution %s: %+v", name, &exec.Status)
	return exec
}

func TestFunctionRunsAndItsRecordIsCaptured(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "hello", `
echo "received: $APPWRITE_FUNCTION_DATA from $APPWRITE_FUNCTION_ID ($APPWRITE_FUNCTION_TRIGGER)"
echo "uid $(id -u)"
cat > /tmp/stdin-copy
echo "stdin: $(cat /tmp/stdin-copy), file: $(cat "$KFN_REQUEST_FILE")"
ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null && echo "token mounted"
echo "a line for stderr" >&2
printf '{"hello":"%s"}' "$APPWRITE_FUNCTION_DATA" > "$KFN_RESPONSE_FILE"
`, 10)
	execute(t, ns, "run", "hello", "world")

	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseCompleted), "%+v", exec.Status)
	g.Expect(exec.Status.StatusCode).To(Equal(int32(200)))
	g.Expect(exec.Status.Response).To(Equal(`{"hello":"world"}`))
	g.Expect(exec.Status.Stdout).To(ContainSubstring("received: world from hello (http)"))
	g.Expect(exec.Status.Stdout).To(ContainSubstring("uid 65532"), "runs as non-root")
	g.Expect(exec.Status.Stdout).To(ContainSubstring("stdin: world, file: world"))
	g.Expect(exec.Status.Stdout).NotTo(ContainSubstring("token mounted"), "no service account token")
	g.Expect(exec.Status.Stderr).To(Equal("a line for stderr\n"))
	g.Expect(exec.Status.Duration).To(BeNumerically(">", 0))
	g.Expect(exec.Status.PodName).NotTo(BeEmpty())

	// Once captured, the Job and its pod are removed; the record stays.
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: exec.Status.JobName}, &batchv1.Job{}))
	}, eventually, poll).Should(BeTrue())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: exec.Status.PodName}, &corev1.Pod{}))
	}, eventually, poll).Should(BeTrue())
}

func TestFailingFunction(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "broken", `echo "about to fail"; echo "it broke" >&2; exit 3`, 10)
	execute(t, ns, "run", "broken", "")
	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseFailed))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.ExitCode).To(Equal(ptr.To[int32](3)))
	g.Expect(exec.Status.Stdout).To(Equal("about to fail\n"))
	g.Expect(exec.Status.Stderr).To(Equal("it broke\n"))
}

func TestCustomStatusCode(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "teapot", `echo 418 > "$KFN_STATUS_CODE_FILE"; printf 'short and stout' > "$KFN_RESPONSE_FILE"
printf 'Content-Type: text/plain\nX-Pot: teapot\n' > "$KFN_RESPONSE_HEADERS_FILE"`, 10)
	execute(t, ns, "run", "teapot", "")
	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseCompleted), "below 500 is completed, as in Appwrite")
	g.Expect(exec.Status.StatusCode).To(Equal(int32(418)))
	g.Expect(exec.Status.Response).To(Equal("short and stout"))
	g.Expect(exec.Status.ResponseHeaders).To(Equal(map[string]string{"content-type": "text/plain", "x-pot": "teapot"}))
}

func TestTimeout(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "slow", `echo started; sleep 60`, 2)
	execute(t, ns, "run", "slow", "")
	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseFailed))
	g.Expect(exec.Status.Reason).To(Equal(fnv1.ReasonTimedOut))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Stderr).To(ContainSubstring("timed out"))
	g.Expect(exec.Status.Stdout).To(Equal("started\n"))
	g.Expect(exec.Status.Duration).To(BeNumerically(">=", 2))
}

func TestLargeOutputArrivesThroughTheLog(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// 1.5 MB of stdout and a 900 kB response: far beyond the 4 KiB termination message.
	shellFunction(t, ns, "chatty", `
i=0; while [ $i -lt 15000 ]; do printf '%099d\n' $i; i=$((i+1)); done
echo "LAST LINE"
head -c 900000 /dev/zero | tr '\0' 'r' > "$KFN_RESPONSE_FILE"
`, 60)
	execute(t, ns, "run", "chatty", "")
	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseCompleted), exec.Status.Stderr)
	g.Expect(exec.Status.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
	g.Expect(exec.Status.Stdout).To(HaveSuffix("LAST LINE\n"))
	g.Expect(len(exec.Status.Response)).To(BeNumerically(">", 4096))
	g.Expect(exec.Status.Response).To(HavePrefix("rrrr"))
}

func TestPodDeletedMidRun(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "sleeper", `echo sleeping; sleep 60`, 120)
	execute(t, ns, "run", "sleeper", "")
	exec := waitFor(t, ns, "run", fnv1.PhaseProcessing)
	g.Expect(k8s.Delete(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: exec.Status.PodName, Namespace: ns}})).To(Succeed())

	exec = waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseFailed))
	g.Expect(exec.Status.StatusCode).To(Equal(int32(500)))
	g.Expect(exec.Status.Reason).To(BeElementOf(fnv1.ReasonPodLost, fnv1.ReasonFunctionFailed, fnv1.ReasonPodFailed, fnv1.ReasonNoResult))
	g.Expect(exec.Status.Stderr).NotTo(BeEmpty(), "the failure is explained")
}

// The result waits in the pod's status and log, so an operator that was down
// while the function finished still records it.
func TestResultSurvivesAnOperatorRestart(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	shellFunction(t, ns, "steady", `sleep 3; echo done`, 30)
	execute(t, ns, "run", "steady", "")
	waitFor(t, ns, "run", fnv1.PhaseProcessing)

	scaleOperator(t, 0)
	t.Cleanup(func() { scaleOperator(t, 1) })
	time.Sleep(5 * time.Second) // the function finishes while nobody watches
	g.Expect(waitFor(t, ns, "run", fnv1.PhaseProcessing).Status.Status).To(Equal(fnv1.PhaseProcessing))
	scaleOperator(t, 1)

	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	g.Expect(exec.Status.Status).To(Equal(fnv1.PhaseCompleted))
	g.Expect(exec.Status.Stdout).To(Equal("done\n"))
}

func scaleOperator(t *testing.T, replicas int32) {
	t.Helper()
	scaleDeployment(t, "kfn-manager", "manager", replicas)
}

// scaleDeployment scales a kfn Deployment and waits until exactly that many
// of its component's pods are ready (none left, for 0).
func scaleDeployment(t *testing.T, name, component string, replicas int32) {
	t.Helper()
	g := NewWithT(t)
	key := types.NamespacedName{Namespace: "kfn-system", Name: name}
	deploy := &appsv1.Deployment{}
	g.Expect(k8s.Get(bg, key, deploy)).To(Succeed())
	patch := client.MergeFrom(deploy.DeepCopy())
	deploy.Spec.Replicas = ptr.To(replicas)
	g.Expect(k8s.Patch(bg, deploy, patch)).To(Succeed())
	g.Eventually(func() bool {
		pods := &corev1.PodList{}
		g.Expect(k8s.List(bg, pods, client.InNamespace("kfn-system"), client.MatchingLabels{"app.kubernetes.io/component": component})).To(Succeed())
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && strings.Contains(podConditions(&p), "Ready=True") {
				ready++
			}
		}
		if replicas == 0 {
			return len(pods.Items) == 0
		}
		// Old pods still stopping count: a scaled component has only its own.
		return ready == int(replicas) && len(pods.Items) == int(replicas)
	}, eventually, poll).Should(BeTrue(), "%s scaled to %d", name, replicas)
}

func podConditions(p *corev1.Pod) string {
	var parts []string
	for _, c := range p.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	return strings.Join(parts, ",")
}
