//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

const releaseNamespace = "kfn-system"

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: run the end-to-end tests with `make test-e2e`")
	}
	out, err := exec.Command(bin, append(args, "--namespace", releaseNamespace)...).CombinedOutput()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "helm %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// TestHelmLifecycle upgrades and then uninstalls the release; hack/e2e.sh
// runs it after every other test, since it removes kfn.
func TestHelmLifecycle(t *testing.T) {
	g := NewWithT(t)

	// An upgrade that changes a value rolls the manager out with it.
	helm(t, "upgrade", "kfn", "../../charts/kfn", "--reuse-values", "--set", "manager.logLevel=debug", "--wait", "--timeout", "180s")
	deploy := &appsv1.Deployment{}
	g.Eventually(func() bool {
		g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: "kfn-manager"}, deploy)).To(Succeed())
		rolledOut := deploy.Status.ObservedGeneration == deploy.Generation &&
			deploy.Status.UpdatedReplicas == *deploy.Spec.Replicas && deploy.Status.AvailableReplicas == *deploy.Spec.Replicas &&
			deploy.Status.Replicas == *deploy.Spec.Replicas
		return rolledOut
	}, eventually, poll).Should(BeTrue())
	g.Expect(deploy.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--zap-log-level=debug"))

	// kfn still runs functions after the upgrade.
	ns := newNamespace(t)
	shellFunction(t, ns, "after-upgrade", `echo still here`, 10)
	execute(t, ns, "run", "after-upgrade", "")
	g.Expect(waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed).Status.Stdout).To(Equal("still here\n"))

	// Uninstall leaves no kfn object but the CRDs (Helm keeps those).
	helm(t, "uninstall", "kfn", "--wait", "--timeout", "180s")
	release := client.MatchingLabels{"app.kubernetes.io/instance": "kfn"}
	for _, list := range []client.ObjectList{
		&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ServiceAccountList{}, &corev1.ConfigMapList{},
		&rbacv1.RoleList{}, &rbacv1.RoleBindingList{},
	} {
		g.Expect(k8s.List(bg, list, client.InNamespace(releaseNamespace), release)).To(Succeed())
		g.Expect(apimeta.LenList(list)).To(BeZero(), "%T left behind", list)
	}
	for _, list := range []client.ObjectList{&rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{}} {
		g.Expect(k8s.List(bg, list, release)).To(Succeed())
		g.Expect(apimeta.LenList(list)).To(BeZero(), "%T left behind", list)
	}
	for _, name := range []string{"functions.functions.kfn.dev", "executions.functions.kfn.dev"} {
		err := k8s.Get(bg, types.NamespacedName{Name: name}, &apiextensionsv1.CustomResourceDefinition{})
		g.Expect(apierrors.IsNotFound(err)).To(BeFalse(), "CRD %s stays", name)
	}
}
