package apiserver

import (
	"testing"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kfn-dev/kfn/internal/kube"
)

// The facade's generated ClusterRole (the one every test here runs the
// facade with) lets it read Secrets only by the names kfn-api-keys and
// kfn-jwt, list or watch them only so named, create Secrets, and never
// read, list, change or delete any other.
func TestFacadeReadsNoOtherSecret(t *testing.T) {
	g := gomega.NewWithT(t)
	p := newProject(t)
	other := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: p.name, Labels: kube.ManagedLabels()},
		StringData: map[string]string{"password": "hunter2"},
	}
	g.Expect(k8s.Create(bg, other)).To(gomega.Succeed())

	as, err := client.New(rest.CopyConfig(facadeConfigForTests), client.Options{Scheme: k8s.Scheme()})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: p.name, Name: name} }
	forbidden := gomega.Satisfy(apierrors.IsForbidden)

	g.Expect(as.Get(bg, key(APIKeysSecretName), &corev1.Secret{})).To(gomega.Succeed())
	g.Expect(as.Get(bg, key(JWTSecretName), &corev1.Secret{})).To(gomega.Succeed())
	g.Expect(as.Get(bg, key(other.Name), &corev1.Secret{})).To(forbidden)
	var list corev1.SecretList
	g.Expect(as.List(bg, &list, client.MatchingFields{"metadata.name": APIKeysSecretName})).To(gomega.Succeed())
	g.Expect(as.List(bg, &list, client.MatchingFields{"metadata.name": other.Name})).To(forbidden)
	g.Expect(as.List(bg, &list)).To(forbidden)
	g.Expect(as.List(bg, &list, client.InNamespace(p.name))).To(forbidden)
	g.Expect(as.List(bg, &list, client.MatchingLabels(kube.ManagedLabels()))).To(forbidden)
	g.Expect(as.Delete(bg, other)).To(forbidden)
	keys := &corev1.Secret{}
	g.Expect(k8s.Get(bg, key(APIKeysSecretName), keys)).To(gomega.Succeed())
	keys.Data["mine.hash"] = []byte(HashAPIKey("mine"))
	g.Expect(as.Update(bg, keys)).To(forbidden)
	g.Expect(as.Delete(bg, keys)).To(forbidden)
	g.Expect(as.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "made", Namespace: p.name}})).To(gomega.Succeed())
}
