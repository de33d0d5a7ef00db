package apiserver

import (
	"testing"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/projectaccess"
)

// asFacade is a client with the facade's rights (facadeIdentity).
func asFacade(t *testing.T) client.Client {
	t.Helper()
	as, err := client.New(rest.CopyConfig(facadeConfigForTests), client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// The facade's generated roles (the ones every test here runs the facade
// with) let it read Secrets only by the names kfn-api-keys and kfn-jwt and
// only in project namespaces, create Secrets and Executions only there,
// never list or watch a Secret, and never change or delete one.
func TestFacadeReadsNoOtherSecret(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	other := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: p.name, Labels: kube.ManagedLabels()},
		StringData: map[string]string{"password": "hunter2"},
	}
	g.Expect(k8s.Create(bg, other)).To(gomega.Succeed())
	plain := "plain-" + rand.String(6)
	g.Expect(k8s.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plain}})).To(gomega.Succeed())
	g.Expect(k8s.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: JWTSecretName, Namespace: plain}})).To(gomega.Succeed())

	as := asFacade(t)
	key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	forbidden := gomega.Satisfy(apierrors.IsForbidden)

	g.Expect(as.Get(bg, key(p.name, APIKeysSecretName), &corev1.Secret{})).To(gomega.Succeed())
	g.Expect(as.Get(bg, key(p.name, JWTSecretName), &corev1.Secret{})).To(gomega.Succeed())
	g.Expect(as.Get(bg, key(p.name, other.Name), &corev1.Secret{})).To(forbidden)
	g.Expect(as.Get(bg, key(plain, JWTSecretName), &corev1.Secret{})).To(forbidden, "not a project namespace")
	var list corev1.SecretList
	g.Expect(as.List(bg, &list, client.MatchingFields{"metadata.name": APIKeysSecretName})).To(forbidden)
	g.Expect(as.List(bg, &list, client.InNamespace(p.name), client.MatchingFields{"metadata.name": APIKeysSecretName})).To(forbidden)
	g.Expect(as.List(bg, &list)).To(forbidden)
	g.Expect(as.List(bg, &list, client.InNamespace(p.name))).To(forbidden)
	g.Expect(as.Delete(bg, other)).To(forbidden)
	keys := &corev1.Secret{}
	g.Expect(k8s.Get(bg, key(p.name, APIKeysSecretName), keys)).To(gomega.Succeed())
	keys.Data["mine.hash"] = []byte(HashAPIKey("mine"))
	g.Expect(as.Update(bg, keys)).To(forbidden)
	g.Expect(as.Delete(bg, keys)).To(forbidden)
	g.Expect(as.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "made", Namespace: p.name}})).To(gomega.Succeed())
	g.Expect(as.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "made", Namespace: plain}})).To(forbidden)
	exec := func(ns string) *fnv1.Execution {
		return &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "e-" + rand.String(6), Namespace: ns}, Spec: fnv1.ExecutionSpec{FunctionName: "none"}}
	}
	g.Expect(as.Create(bg, exec(plain))).To(forbidden)
	g.Expect(as.Create(bg, exec(p.name))).To(gomega.Succeed())
}

// The operator binds the facade's project role in a namespace while it is
// labelled a project, restores the binding if it is changed, and removes
// it once the namespace is no longer a project.
func TestProjectAccessFollowsTheProjectLabel(t *testing.T) {
	g := gomega.NewWithT(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "p-" + rand.String(8)}}
	g.Expect(k8s.Create(bg, ns)).To(gomega.Succeed())
	g.Expect(k8s.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: JWTSecretName, Namespace: ns.Name}})).To(gomega.Succeed())
	as := asFacade(t)
	canRead := func() error {
		return as.Get(bg, types.NamespacedName{Namespace: ns.Name, Name: JWTSecretName}, &corev1.Secret{})
	}
	g.Consistently(canRead, "1s", "100ms").Should(gomega.Satisfy(apierrors.IsForbidden), "not a project yet")

	ns.Labels = map[string]string{kube.LabelProject: "true"}
	g.Expect(k8s.Update(bg, ns)).To(gomega.Succeed())
	g.Eventually(canRead, eventually, "100ms").Should(gomega.Succeed())

	binding := &rbacv1.RoleBinding{}
	bindingKey := types.NamespacedName{Namespace: ns.Name, Name: projectaccess.BindingName}
	g.Expect(k8s.Get(bg, bindingKey, binding)).To(gomega.Succeed())
	g.Expect(binding.Labels).To(gomega.HaveKeyWithValue(kube.LabelManagedBy, kube.ManagedBy))
	binding.Subjects = append(binding.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "intruder", Namespace: ns.Name})
	g.Expect(k8s.Update(bg, binding)).To(gomega.Succeed())
	g.Eventually(func() []rbacv1.Subject {
		g.Expect(k8s.Get(bg, bindingKey, binding)).To(gomega.Succeed())
		return binding.Subjects
	}, eventually, "100ms").Should(gomega.HaveLen(1), "the operator restores the binding's one subject")

	g.Expect(k8s.Get(bg, types.NamespacedName{Name: ns.Name}, ns)).To(gomega.Succeed())
	delete(ns.Labels, kube.LabelProject)
	g.Expect(k8s.Update(bg, ns)).To(gomega.Succeed())
	g.Eventually(canRead, eventually, "100ms").Should(gomega.Satisfy(apierrors.IsForbidden))
	g.Expect(apierrors.IsNotFound(k8s.Get(bg, bindingKey, &rbacv1.RoleBinding{}))).To(gomega.BeTrue())
}
