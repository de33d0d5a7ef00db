// Package testenv holds what the envtest integration suites share: a real
// kube-apiserver and etcd with kfn's CRDs installed, and a manager set up
// as the operator's.
package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kfn-dev/kfn/internal/kube"
)

// newEnvironment returns an envtest environment with kfn's CRDs. It exits the test
// binary with a clear message when the API server and etcd binaries are
// not there, and sends the controllers' logs to stderr only when
// KFN_TEST_LOGS is set.
func newEnvironment() *envtest.Environment {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test` (it builds the kube-apiserver and etcd they need)")
		os.Exit(1)
	}
	logs := io.Discard
	if os.Getenv("KFN_TEST_LOGS") != "" {
		logs = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logs)))
	_, file, _, _ := runtime.Caller(0)
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
}

// Fixture is a running envtest API server with a manager set up as the
// operator's (scheme, cache filter and transforms, field indexes), and a
// client that reads around the manager's cache, as tests want.
type Fixture struct {
	Env     *envtest.Environment
	Config  *rest.Config
	Manager ctrl.Manager
	Client  client.Client
	stop    context.CancelFunc
}

// Start starts the API server and sets up the manager, to be started with
// StartManager once the controllers are added to it; Stop undoes both.
func Start() (*Fixture, error) {
	f := &Fixture{Env: newEnvironment(), stop: func() {}}
	var err error
	if f.Config, err = f.Env.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	if err := f.setUp(); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

func (f *Fixture) setUp() error {
	scheme := kube.NewScheme()
	mgr, err := ctrl.NewManager(f.Config, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		// The operator's cache, transforms included, so tests see what it sees.
		Cache: kube.CacheOptions(kube.Operator),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := kube.IndexExecutionsByFunction(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := kube.IndexUnfinishedExecutions(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	f.Manager = mgr
	f.Client, err = client.New(f.Config, client.Options{Scheme: scheme})
	return err
}

// StartManager runs the manager until Stop. A manager that fails leaves
// every test waiting, so the test binary exits at once.
func (f *Fixture) StartManager() {
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	go func() {
		if err := f.Manager.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
			os.Exit(1)
		}
	}()
}

// Stop stops the manager, then the API server.
func (f *Fixture) Stop() {
	f.stop()
	_ = f.Env.Stop()
}

// Run is the TestMain of an envtest suite: it starts the fixture, lets
// setUp add the suite's controllers (and start what else it needs, undone
// by the cleanup it returns), starts the manager and runs the tests.
func Run(m *testing.M, setUp func(*Fixture) (cleanup func(), err error)) int {
	f, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Stop()
	cleanup, err := setUp(f)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the suite:", err)
		return 1
	}
	f.StartManager()
	return m.Run()
}
