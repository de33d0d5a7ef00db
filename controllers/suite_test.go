package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/kfn-dev/kfn/internal/testenv"
)

// The integration tests run the controllers against a real kube-apiserver
// and etcd (envtest) plus the real garbage collector of
// kube-controller-manager, so owner-reference cascades are observed, not
// assumed. There is no kubelet: tests play its part by creating the Job's
// pod and writing pod status.

var (
	k8s       client.Client
	testEnv   *envtest.Environment
	testClock = clocktesting.NewFakePassiveClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	testLogs  = &memoryLogs{logs: map[string][]byte{}}
	restCfg   *rest.Config
	// mgrClient is the test manager's cached client, for reconcilers a
	// test runs by hand next to the manager's (a second replica).
	mgrClient   client.Client
	mgrRecorder recorder.EventRecorder
)

const (
	testRunnerImage    = "kfn.dev/kfn:test"
	testStartupGrace   = 30 * time.Second
	testMaxRecordBytes = 64 << 10
	// testNamespaceCap binds only in the admission test: no other test
	// runs that many executions in one namespace.
	testNamespaceCap = 10
)

var testRuntimes = RuntimeCatalog{
	"node-20": {Name: "node-20", Image: "node:20-alpine", Command: []string{"node"}},
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The unit tests need no cluster; the integration tests skip
		// themselves (see newNamespace).
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	return testenv.Run(m, func(fixture *testenv.Fixture) (func(), error) {
		testEnv, restCfg, k8s = fixture.Env, fixture.Config, fixture.Client
		stopGC, err := startGarbageCollector()
		if err != nil {
			return nil, fmt.Errorf("starting the garbage collector: %w", err)
		}
		return stopGC, setUpControllers(fixture.Manager)
	})
}

func setUpControllers(mgr ctrl.Manager) error {
	scheme := mgr.GetScheme()
	// The reconcilers' writes are counted (apiWrites) by the tests that
	// bound the API writes an execution costs.
	c := countingClient(mgr.GetClient())
	// The manager's default bounds, so the API server validates the Jobs
	// the operator really makes.
	jobs := JobOptions{RunnerImage: testRunnerImage, StartupGrace: testStartupGrace}
	withDefaults(&jobs)
	if err := (&ExecutionReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("kfn-execution"), Clock: testClock, Logs: testLogs,
		Runtimes: testRuntimes, MaxRecordBytes: testMaxRecordBytes,
		Jobs: jobs, MaxRunningPerNamespace: testNamespaceCap, Workers: 4,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&FunctionReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("kfn-function"), Runtimes: testRuntimes,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&ScheduleReconciler{
		Client: c, Scheme: scheme, Recorder: mgr.GetEventRecorder("kfn-schedule"), Clock: testClock,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&EventReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Scheme: scheme, Recorder: mgr.GetEventRecorder("kfn-events"), Clock: testClock,
		Resources: []schema.GroupVersionResource{{Version: "v1", Resource: "configmaps"}},
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	mgrClient, mgrRecorder = mgr.GetClient(), mgr.GetEventRecorder("kfn-schedule")
	return nil
}

// startGarbageCollector runs kube-controller-manager's garbage collector
// (only that controller) against the envtest API server.
func startGarbageCollector() (stop func(), err error) {
	user, err := testEnv.AddUser(envtest.User{Name: "gc", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kfn-gc-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-controller-manager"),
		"--kubeconfig="+path, "--controllers=garbagecollector", "--leader-elect=false", "--secure-port=0", "-v=1")
	logFile, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// memoryLogs stands in for the kubelet's log endpoint, which envtest lacks.
type memoryLogs struct {
	mu   sync.Mutex
	logs map[string][]byte
}

func (m *memoryLogs) set(namespace, pod string, log []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[namespace+"/"+pod] = log
}

func (m *memoryLogs) ContainerLog(_ context.Context, namespace, pod, container string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if container != functionContainer {
		return nil, fmt.Errorf("unexpected container %q", container)
	}
	log, ok := m.logs[namespace+"/"+pod]
	if !ok {
		return nil, fmt.Errorf("no log for pod %s/%s", namespace, pod)
	}
	return log, nil
}

// newNamespace gives each test its own namespace, with the default service
// account the ServiceAccount admission plugin expects. Every integration
// test starts with it, so it skips them under -short, when there is no API
// server.
func newNamespace(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the envtest API server")
	}
	g := gomega.NewWithT(t)
	name := "t-" + rand.String(8)
	g.Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(gomega.Succeed())
	g.Expect(k8s.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}})).To(gomega.Succeed())
	return name
}
