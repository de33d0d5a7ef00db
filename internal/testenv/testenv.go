// Package testenv holds what the envtest integration suites share: a real
// kube-apiserver and etcd with kfn's CRDs installed.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// New returns an envtest environment with kfn's CRDs. It exits the test
// binary with a clear message when the API server and etcd binaries are
// not there, and sends the controllers' logs to stderr only when
// KFN_TEST_LOGS is set.
func New() *envtest.Environment {
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
