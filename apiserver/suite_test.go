package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/controllers"
	"github.com/kfn-dev/kfn/internal/runner"
	"github.com/kfn-dev/kfn/internal/testenv"
)

// The integration tests run the facade on a loopback port in front of a
// real kube-apiserver and etcd (envtest) and the real kfn controllers.
// There is no kubelet: fakeKubelet plays its part, creating each Job's pod
// and writing the function container's terminated state with a runner
// result, decided by the execution's payload (see behave).

var (
	k8s       client.Client
	facadeURL string
	facade    *Server
	// facadeConfigForTests acts as the facade's service account.
	facadeConfigForTests *rest.Config
)

// Test settings, short so the timeout paths run fast.
const (
	testSyncTimeout = 3 * time.Second
	testSyncGrace   = 1 * time.Second
	testRateLimit   = 5
	// testCredentialsTTL keeps a project's keys briefly, so tests see the
	// keys they add or revoke within a poll or two.
	testCredentialsTTL = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	flag.Parse()
	if noCluster() {
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

// noCluster tells when no test that needs the cluster runs: fuzzing (and
// its worker processes), or benchmarks alone (-run '^$').
func noCluster() bool {
	fuzz, run := flag.Lookup("test.fuzz"), flag.Lookup("test.run")
	return (fuzz != nil && fuzz.Value.String() != "") || (run != nil && run.Value.String() == "^$")
}

func runSuite(m *testing.M) int {
	return testenv.Run(m, func(fixture *testenv.Fixture) (func(), error) {
		k8s = fixture.Client
		if err := setup(fixture.Manager); err != nil {
			return nil, err
		}
		return startFacade(fixture)
	})
}

// startFacade runs the facade as `kfn apiserver` does: in a manager of its
// own, with the facade's cache, as a service account that holds only the
// facade's generated ClusterRole.
func startFacade(fixture *testenv.Fixture) (stop func(), err error) {
	facadeConfig, err := facadeIdentity(fixture.Config)
	if err != nil {
		return nil, fmt.Errorf("setting up the facade's identity: %w", err)
	}
	facadeMgr, err := newManager(facadeConfig, Addresses{Metrics: "0"})
	if err == nil {
		err = setupFacade(facadeMgr)
	}
	if err != nil {
		return nil, fmt.Errorf("setting up the facade: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		if err := facadeMgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "facade manager:", err)
			os.Exit(1)
		}
	}()
	select {
	case <-facade.Ready():
		return stop, nil
	case <-time.After(60 * time.Second):
		return stop, errors.New("the facade did not start")
	}
}

func setup(mgr ctrl.Manager) error {
	if err := (&controllers.ExecutionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("kfn-execution"), Clock: clock.RealClock{}, Logs: noLogs{},
		MaxRecordBytes: 64 << 10,
		Jobs:           controllers.JobOptions{RunnerImage: "kfn.dev/kfn:test", StartupGrace: 30 * time.Second},
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&controllers.FunctionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("kfn-function"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&controllers.ProjectAccessReconciler{
		Client: mgr.GetClient(), Role: "kfn-apiserver-project",
		Facade: types.NamespacedName{Namespace: facadeNamespace, Name: facadeAccount},
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("fake-kubelet").For(&batchv1.Job{}).
		Complete(&fakeKubelet{c: mgr.GetClient()})
}

func setupFacade(mgr ctrl.Manager) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	facadeURL = "http://" + ln.Addr().String()
	// 127.0.0.1 is a trusted proxy, so a test may speak for another
	// client IP with X-Forwarded-For.
	facade, err = SetupWithManager(mgr, Options{
		Listener: ln, SyncTimeout: testSyncTimeout, SyncGrace: testSyncGrace,
		RateLimit: testRateLimit, RatePeriod: time.Minute,
		IPLimit: DefaultOptions().IPLimit, UserLimit: DefaultOptions().UserLimit,
		TrustedProxies: []string{"127.0.0.1"},
		// Short, so a key a test adds works at once (addKey waits for it).
		CredentialsTTL: testCredentialsTTL,
	})
	return err
}

// facadeUser is who the facade is in the suite: a service account bound
// to config/apiserver/rbac/role.yaml, and in each project namespace (by the
// operator's ProjectAccessReconciler) to config/apiserver/project-rbac,
// the ClusterRoles `make manifests` generates from the markers and the
// chart installs.
const (
	facadeNamespace, facadeAccount = "kfn-system", "kfn-apiserver"
	facadeUser                     = "system:serviceaccount:" + facadeNamespace + ":" + facadeAccount
)

// generatedClusterRole reads a ClusterRole `make manifests` wrote.
func generatedClusterRole(dir string) (*rbacv1.ClusterRole, error) {
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "config", "apiserver", dir, "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	return role, yaml.UnmarshalStrict(raw, role)
}

// facadeIdentity installs the facade's ClusterRoles for its service account
// and returns a config that acts as that account, so every integration
// test runs with the facade's real rights and no more.
func facadeIdentity(admin *rest.Config) (*rest.Config, error) {
	role, err := generatedClusterRole("rbac")
	if err != nil {
		return nil, err
	}
	projectRole, err := generatedClusterRole("project-rbac")
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: facadeNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: facadeAccount, Namespace: facadeNamespace}},
		role,
		projectRole,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: facadeAccount, Namespace: facadeNamespace}},
		},
	} {
		if err := k8s.Create(context.Background(), obj); err != nil {
			return nil, err
		}
	}
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: facadeUser}
	facadeConfigForTests = cfg
	return cfg, nil
}

type noLogs struct{}

func (noLogs) ContainerLog(context.Context, string, string, string) ([]byte, error) {
	return nil, errors.New("envtest has no pod logs")
}

// fakeKubelet runs each Job: it creates the pod, marks the function
// container running, then terminated with the result behave decides.
type fakeKubelet struct{ c client.Client }

func (k *fakeKubelet) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	job := &batchv1.Job{}
	if err := k.c.Get(ctx, req.NamespacedName, job); err != nil || job.DeletionTimestamp != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	exec := &fnv1.Execution{}
	execName := job.Labels["functions.kfn.dev/execution"]
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: job.Namespace, Name: execName}, exec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	pod := &corev1.Pod{}
	podKey := types.NamespacedName{Namespace: job.Namespace, Name: job.Name + "-pod"}
	if err := k.c.Get(ctx, podKey, pod); apierrors.IsNotFound(err) {
		pod = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: podKey.Name, Namespace: podKey.Namespace, Labels: job.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
			},
			Spec: *job.Spec.Template.Spec.DeepCopy(),
		}
		if err := k.c.Create(ctx, pod); err != nil {
			return ctrl.Result{}, err
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "function", Image: pod.Spec.Containers[0].Image,
			Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
		if err := k.c.Status().Update(ctx, pod); err != nil {
			return ctrl.Result{}, err
		}
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if len(pod.Status.ContainerStatuses) == 0 || pod.Status.ContainerStatuses[0].State.Running == nil {
		return ctrl.Result{}, nil // already terminated
	}
	res, delay, hang := behave(exec)
	if hang {
		return ctrl.Result{}, nil
	}
	started := pod.Status.ContainerStatuses[0].State.Running.StartedAt.Time
	if wait := time.Until(started.Add(delay)); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	res.Version = runner.ResultVersion
	res.StartedAt, res.FinishedAt = started, started.Add(delay+100*time.Millisecond)
	res.Duration = (delay + 100*time.Millisecond).Seconds()
	msg, _ := json.Marshal(res)
	exit := int32(res.ExitCode)
	pod.Status.Phase = corev1.PodSucceeded
	if exit != 0 {
		pod.Status.Phase = corev1.PodFailed
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "function", Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exit, Reason: "Completed", Message: string(msg),
			StartedAt: metav1.NewTime(res.StartedAt), FinishedAt: metav1.NewTime(res.FinishedAt),
		}}}}
	return ctrl.Result{}, k.c.Status().Update(ctx, pod)
}

// behave is the test function: its payload says what it does.
//
//	hang          never finishes
//	sleep:MS      answers after MS milliseconds
//	status:CODE   answers CODE
//	fail          exits 1 with status 500 and "boom" on stderr
//	headers       answers with a content-type and an x-trace-id header
//	stdout:N      answers 200 with N bytes of stdout
//	anything else answers 200 with "echo:<payload>" (plus the user ID, if any)
func behave(e *fnv1.Execution) (res runner.Result, delay time.Duration, hang bool) {
	payload := e.RequestBody()
	res = runner.Result{StatusCode: 200, Response: "echo:" + payload, Stdout: "log:" + payload, Stderr: "warn:" + payload}
	if e.Spec.UserID != "" {
		res.Response += " user:" + e.Spec.UserID
	}
	switch {
	case payload == "hang":
		return res, 0, true
	case strings.HasPrefix(payload, "sleep:"):
		ms, _ := strconv.Atoi(strings.TrimPrefix(payload, "sleep:"))
		delay = time.Duration(ms) * time.Millisecond
	case strings.HasPrefix(payload, "status:"):
		res.StatusCode, _ = strconv.Atoi(strings.TrimPrefix(payload, "status:"))
		res.Response = "status " + strconv.Itoa(res.StatusCode)
	case payload == "fail":
		res.StatusCode, res.ExitCode, res.Response, res.Stderr = 500, 1, "", "boom"
	case strings.HasPrefix(payload, "stdout:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(payload, "stdout:"))
		res.Stdout = strings.Repeat("x", n)
	case payload == "headers":
		res.ResponseHeaders = map[string]string{"content-type": "application/json", "x-trace-id": "abc"}
	}
	return res, delay, false
}
