package controllers

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// The chart's optional Function policy (functionPolicy.enabled), as the
// chart ships it, on a real API server: it refuses Functions whose image,
// service account or token the cluster's admin did not allow, with a
// message that says so, and lets catalog runtimes and allowed images
// through. It is bound here to the test's namespace only.
func TestFunctionPolicyRefusesWhatIsNotAllowed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	policy := &admissionv1.ValidatingAdmissionPolicy{}
	raw, err := os.ReadFile(filepath.Join("..", "charts", "kfn", "files", "function-policy.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.UnmarshalStrict(raw, policy)).To(Succeed())
	policy.Name = "kfn-function-policy-" + ns
	g.Expect(k8s.Create(bg, policy)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(bg, policy) })
	g.Expect(k8s.Create(bg, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "function-policy", Namespace: ns},
		Data: map[string]string{
			"allowedImages":            "registry.example.com/team/, busybox:1.36",
			"allowedServiceAccounts":   "runner",
			"allowServiceAccountToken": "false",
		},
	})).To(Succeed())
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			ParamRef: &admissionv1.ParamRef{Name: "function-policy", Namespace: ns,
				ParameterNotFoundAction: ptr.To(admissionv1.DenyAction)},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
		},
	}
	g.Expect(k8s.Create(bg, binding)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(bg, binding) })

	function := func(mutate func(*fnv1.FunctionSpec)) *fnv1.Function {
		fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{GenerateName: "fn-", Namespace: ns},
			Spec: fnv1.FunctionSpec{Image: "registry.example.com/team/app:v1", Command: []string{"sh"}}}
		mutate(&fn.Spec)
		return fn
	}
	forbidden := function(func(s *fnv1.FunctionSpec) { s.Image = "evil.example.com/miner:latest" })
	// The policy takes effect once the API server has loaded it and its binding.
	g.Eventually(func() error { return k8s.Create(bg, forbidden.DeepCopy(), client.DryRunAll) }, eventually, poll).Should(And(
		WithTransform(apierrors.IsForbidden, BeTrue()),
		MatchError(ContainSubstring("spec.image evil.example.com/miner:latest is not allowed in this cluster: use a runtime from the catalog (spec.runtime) or an image matching registry.example.com/team/, busybox:1.36"))))

	for name, tc := range map[string]struct {
		spec  func(*fnv1.FunctionSpec)
		words string // "" when allowed
	}{
		"an image under an allowed prefix": {spec: func(*fnv1.FunctionSpec) {}},
		"an allowed exact image":           {spec: func(s *fnv1.FunctionSpec) { s.Image = "busybox:1.36" }},
		"a runtime from the catalog":       {spec: func(s *fnv1.FunctionSpec) { s.Image, s.Runtime = "", "node-20" }},
		"an allowed service account":       {spec: func(s *fnv1.FunctionSpec) { s.ServiceAccountName = "runner" }},
		"the default service account":      {spec: func(s *fnv1.FunctionSpec) { s.ServiceAccountName = "default" }},
		"no token, said explicitly":        {spec: func(s *fnv1.FunctionSpec) { s.AutomountServiceAccountToken = ptr.To(false) }},
		"a look-alike of an allowed prefix": {
			spec:  func(s *fnv1.FunctionSpec) { s.Image = "registry.example.com/team-b/app:v1" },
			words: "spec.image registry.example.com/team-b/app:v1 is not allowed",
		},
		"another tag of an exact image": {
			spec:  func(s *fnv1.FunctionSpec) { s.Image = "busybox:1.36-evil" },
			words: "spec.image busybox:1.36-evil is not allowed",
		},
		"a service account not allowed": {
			spec:  func(s *fnv1.FunctionSpec) { s.ServiceAccountName = "cluster-admin-sa" },
			words: "spec.serviceAccountName cluster-admin-sa is not allowed in this cluster: leave it empty (the namespace's default service account) or use one of runner",
		},
		"a token": {
			spec:  func(s *fnv1.FunctionSpec) { s.AutomountServiceAccountToken = ptr.To(true) },
			words: "spec.automountServiceAccountToken is not allowed in this cluster",
		},
	} {
		err := k8s.Create(bg, function(tc.spec), client.DryRunAll)
		if tc.words == "" {
			g.Expect(err).NotTo(HaveOccurred(), name)
			continue
		}
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: %v", name, err)
		g.Expect(err).To(MatchError(ContainSubstring(tc.words)), name)
	}

	// An update is checked too: an allowed Function cannot be turned into
	// a forbidden one.
	allowed := function(func(*fnv1.FunctionSpec) {})
	g.Expect(k8s.Create(bg, allowed)).To(Succeed())
	patch := client.MergeFrom(allowed.DeepCopy()) // no resourceVersion: the operator's status writes do not conflict
	allowed.Spec.Image = "evil.example.com/miner:latest"
	g.Expect(k8s.Patch(bg, allowed, patch)).To(MatchError(ContainSubstring("spec.image evil.example.com/miner:latest is not allowed in this cluster")))
}
