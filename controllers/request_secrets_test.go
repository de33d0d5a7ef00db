package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Whoever may create an Execution must not get, through it, a Secret that
// was not made for it: another caller's JWT, or any Secret with a jwt or
// body key. An Execution naming one fails, and the Secret is left as it
// was: not mounted, not adopted (so not collected with the Execution), not
// deleted.
func TestForeignSecretsAreNeitherUsedNorTouched(t *testing.T) {
	ns := newNamespace(t)
	createFunction(t, ns, "fn", nil)
	keeper := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keeper", Namespace: ns}}
	NewWithT(t).Expect(k8s.Create(bg, keeper)).To(Succeed())
	keptBy := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: keeper.Name, UID: keeper.UID}}
	for name, tc := range map[string]struct {
		labels map[string]string
		owners []metav1.OwnerReference
		body   bool // named in bodySecrets rather than jwtSecretName
		words  string
	}{
		"unlabelled":       {words: "it is not labelled app.kubernetes.io/managed-by=kfn"},
		"for-another":      {labels: requestSecretLabels("another"), words: "it is not labelled functions.kfn.dev/execution=steal-for-another"},
		"for-another-body": {labels: requestSecretLabels("another"), body: true, words: "body secret for-another-body is not allowed"},
		"owned-elsewhere":  {labels: requestSecretLabels("steal-owned-elsewhere"), owners: keptBy, words: "it is owned by ConfigMap keeper"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			key := contract.JWTSecretKey
			if tc.body {
				key = contract.BodySecretKey
			}
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: tc.labels, OwnerReferences: tc.owners},
				StringData: map[string]string{key: "someone else's"},
			}
			g.Expect(k8s.Create(bg, secret)).To(Succeed())
			exec := createExecution(t, ns, "steal-"+name, "fn", func(e *fnv1.Execution) {
				if tc.body {
					e.Spec.Data, e.Spec.BodySecrets = "", []string{name}
				} else {
					e.Spec.JWTSecretName = name
				}
			})

			failed := waitForStatus(t, ns, exec.Name, fnv1.PhaseFailed)
			g.Expect(failed.Status.Reason).To(Equal(fnv1.ReasonSecretNotAllowed))
			g.Expect(failed.Status.Message).To(And(ContainSubstring("secret "+name+" is not allowed"), ContainSubstring(tc.words),
				ContainSubstring("an execution uses only Secrets made for it")))
			g.Expect(failed.Status.JobName).To(BeEmpty())
			err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: jobName(exec.Name)}, &batchv1.Job{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no pod mounts it")

			unchanged := func() (*corev1.Secret, error) {
				now := &corev1.Secret{}
				return now, k8s.Get(bg, client.ObjectKeyFromObject(secret), now)
			}
			g.Consistently(unchanged, time.Second, poll).Should(And(
				HaveField("ResourceVersion", secret.ResourceVersion), HaveField("OwnerReferences", Equal(tc.owners))))
			g.Expect(k8s.Delete(bg, failed)).To(Succeed())
			waitForGone(t, failed)
			g.Consistently(unchanged, 2*time.Second, poll).Should(HaveField("ResourceVersion", secret.ResourceVersion),
				"neither deleted by the operator nor collected with the Execution")
		})
	}
}

// The facade creates the request's Secrets just after the Execution, which
// they name as their owner: the Execution waits for them, briefly.
func TestExecutionWaitsBrieflyForItsSecrets(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	useClock(t, time.Now()) // the Execution is brand new: within the grace period
	createFunction(t, ns, "fn", nil)
	exec := createExecution(t, ns, "run", "fn", func(e *fnv1.Execution) { e.Spec.JWTSecretName = "run-jwt" })
	g.Eventually(func() string { return getExecution(t, ns, "run").Status.Message }, eventually, poll).
		Should(Equal("waiting for the request's secrets to be created"))
	g.Consistently(func() error {
		return k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: jobName("run")}, &batchv1.Job{})
	}, 2*time.Second, poll).ShouldNot(Succeed(), "no Job without the Secret it mounts")
	g.Expect(getExecution(t, ns, "run").Status.Status).To(Equal(fnv1.PhaseWaiting))

	owner := []metav1.OwnerReference{{APIVersion: fnv1.GroupVersion.String(), Kind: "Execution", Name: exec.Name, UID: exec.UID}}
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "run-jwt", Namespace: ns, Labels: requestSecretLabels("run"), OwnerReferences: owner},
		StringData: map[string]string{contract.JWTSecretKey: "eyJhbGciOi.token"},
	})).To(Succeed())
	job := waitForJob(t, ns, "run")
	g.Expect(envValue(job.Spec.Template.Spec.Containers[0].Env, contract.EnvJWT)).To(HaveField("ValueFrom.SecretKeyRef.Name", "run-jwt"))
	g.Expect(job.Labels).To(HaveKeyWithValue(kube.LabelExecution, "run"))
}
