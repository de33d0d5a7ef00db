package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
)

// Pure functions, mostly tested without an API server.

func TestFairShares(t *testing.T) {
	g := NewWithT(t)
	g.Expect(fairShares([]int{10, 20, 30}, 100)).To(Equal([]int{10, 20, 30}), "all fit")
	g.Expect(fairShares([]int{1000, 10, 10}, 300)).To(Equal([]int{280, 10, 10}), "unused shares go to the big one")
	g.Expect(fairShares([]int{1000, 1000, 10}, 310)).To(Equal([]int{150, 150, 10}))
	g.Expect(fairShares([]int{1000, 1000, 1000}, 300)).To(Equal([]int{100, 100, 100}))
}

func TestFitRecordMarksAndKeepsTheRightEnds(t *testing.T) {
	g := NewWithT(t)
	rec := fitRecord("HEAD"+strings.Repeat("r", 1000), strings.Repeat("o", 1000)+"TAIL", strings.Repeat("é", 1000)+"END", 900)
	g.Expect(rec.truncated).To(Equal([]string{"response", "stdout", "stderr"}))
	g.Expect(rec.response).To(HavePrefix("HEAD"))
	g.Expect(rec.stdout).To(HavePrefix("[WARNING] Logs truncated."))
	g.Expect(rec.stdout).To(HaveSuffix("TAIL"))
	g.Expect(rec.stderr).To(HavePrefix("[WARNING] Errors truncated."))
	g.Expect(rec.stderr).To(HaveSuffix("END"))
	g.Expect(utf8.ValidString(rec.stderr)).To(BeTrue(), "cut on a rune boundary")
	g.Expect(len(rec.response) + len(rec.stdout) + len(rec.stderr)).To(BeNumerically("<=", 900))

	small := fitRecord("a", "b", "c", 900)
	g.Expect(small).To(Equal(record{response: "a", stdout: "b", stderr: "c"}))
}

func TestJobNamesAreValidAndDeterministic(t *testing.T) {
	g := NewWithT(t)
	g.Expect(jobName("run-1")).To(Equal("run-1"))
	long := strings.Repeat("a", 100) + "." + strings.Repeat("b", 100)
	g.Expect(jobName(long)).To(Equal(jobName(long)))
	g.Expect(len(jobName(long))).To(BeNumerically("<=", 63))
	g.Expect(validation.IsDNS1123Subdomain(jobName(long))).To(BeEmpty())
	g.Expect(validation.IsValidLabelValue(jobName(long))).To(BeEmpty())
	g.Expect(jobName(long)).NotTo(Equal(jobName(long + "c")))
	dotted := strings.Repeat("a", 52) + "." + strings.Repeat("b", 20)
	g.Expect(validation.IsDNS1123Subdomain(jobName(dotted))).To(BeEmpty())
}

func TestResolveFunction(t *testing.T) {
	g := NewWithT(t)
	fn := &fnv1.Function{Spec: fnv1.FunctionSpec{Runtime: "node-20", Entrypoint: "index.js"}}
	rf, p := resolveFunction(fn, testRuntimes)
	g.Expect(p).To(BeNil())
	g.Expect(rf).To(Equal(resolvedFunction{Image: "node:20-alpine", Command: []string{"node", "index.js"}}))

	fn.Spec.Command = []string{"node", "--enable-source-maps"}
	rf, _ = resolveFunction(fn, testRuntimes)
	g.Expect(rf.Command).To(Equal([]string{"node", "--enable-source-maps", "index.js"}))

	_, p = resolveFunction(&fnv1.Function{Spec: fnv1.FunctionSpec{Image: "x"}}, testRuntimes)
	g.Expect(p).To(HaveField("Reason", fnv1.ReasonNoCommand))
}

func TestLoadRuntimeCatalog(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	g.Expect(os.WriteFile(good, []byte("runtimes:\n- name: node-20\n  image: node:20\n  command: [node]\n"), 0o600)).To(Succeed())
	catalog, err := LoadRuntimeCatalog(good)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(catalog).To(HaveKeyWithValue("node-20", Runtime{Name: "node-20", Image: "node:20", Command: []string{"node"}}))

	dup := filepath.Join(dir, "dup.yaml")
	g.Expect(os.WriteFile(dup, []byte("runtimes:\n- {name: a, image: x}\n- {name: a, image: y}\n"), 0o600)).To(Succeed())
	_, err = LoadRuntimeCatalog(dup)
	g.Expect(err).To(MatchError(ContainSubstring("listed twice")))

	typo := filepath.Join(dir, "typo.yaml")
	g.Expect(os.WriteFile(typo, []byte("runtimes:\n- {name: a, imag: x}\n"), 0o600)).To(Succeed())
	_, err = LoadRuntimeCatalog(typo)
	g.Expect(err).To(HaveOccurred())
}

// With image volumes the runner needs no init container; the API server
// accepts such a Job (the runtime must support image volumes to run it).
func TestImageVolumeDelivery(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: ns}, Spec: fnv1.FunctionSpec{Image: "busybox:test", Timeout: 5}}
	exec := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: ns}, Spec: fnv1.ExecutionSpec{FunctionName: "fn"}}
	job := buildJob(exec, fn, resolvedFunction{Image: "busybox:test", Command: []string{"true"}},
		JobOptions{RunnerImage: testRunnerImage, RunnerDelivery: DeliverByImageVolume})

	pod := job.Spec.Template.Spec
	g.Expect(pod.InitContainers).To(BeEmpty())
	g.Expect(pod.Volumes).To(ContainElement(HaveField("VolumeSource.Image.Reference", testRunnerImage)))
	g.Expect(pod.Containers[0].Command[:3]).To(Equal([]string{contract.ImageRunner, "run", "--"}))
	g.Expect(pod.Containers[0].VolumeMounts).To(ContainElement(And(HaveField("MountPath", contract.ImageRunnerDir), HaveField("ReadOnly", true))))
	g.Expect(k8s.Create(bg, job, client.DryRunAll)).To(Succeed())
}

func TestParseResourceDefaults(t *testing.T) {
	for text, want := range map[string]string{
		DefaultFunctionResources: "",
		"":                       "",
		"{}":                     "",
		"requests: {cpu: 100m, ephemeral-storage: 1Gi}\nlimits: {memory: 1Gi}": "",
		`{"limits":{"nvidia.com/gpu":"1"}}`:                                    `resource "nvidia.com/gpu" cannot be defaulted`,
		`{"requests":{"memory":"512Mi"},"limits":{"memory":"256Mi"}}`:          "the memory request 512Mi exceeds its limit 256Mi",
		`{"requests":{"cpu":"-1"}}`:                                            "cpu -1 is negative",
		`{"request":{"cpu":"1"}}`:                                              `unknown field "request"`,
		`{"requests":{"cpu":"lots"}}`:                                          "quantities must match",
		`{"claims":[{"name":"gpu"}]}`:                                          "claims cannot be defaulted",
	} {
		_, err := ParseResourceDefaults(text)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want one mentioning %q", text, err, want)
		}
	}
	res, err := ParseResourceDefaults(DefaultFunctionResources)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(res).To(Equal(resources("cpu=50m,memory=64Mi", "memory=256Mi")))
}

func TestParseSizeLimit(t *testing.T) {
	g := NewWithT(t)
	q, err := ParseSizeLimit("256Mi")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(q.Value()).To(Equal(int64(256 << 20)))
	for _, unbounded := range []string{"", "0", "0Mi"} {
		q, err := ParseSizeLimit(unbounded)
		g.Expect(err).NotTo(HaveOccurred(), unbounded)
		g.Expect(q).To(BeNil(), unbounded)
	}
	for _, bad := range []string{"-1Mi", "big"} {
		_, err := ParseSizeLimit(bad)
		g.Expect(err).To(HaveOccurred(), bad)
	}
}

// The runner's directory must hold the runner the init container copies
// and a run's largest request and response files, or every run is evicted.
func TestCheckRunnerDirSizeLimit(t *testing.T) {
	g := NewWithT(t)
	limit, _ := ParseSizeLimit(DefaultRunnerDirSizeLimit)
	const runner = 43 << 20 // the stripped kfn binary, 2026
	g.Expect(CheckRunnerDirSizeLimit(limit, runner)).To(Succeed(), "the default holds today's runner")
	g.Expect(runnerDirIOBytes).To(BeNumerically(">=", fnv1.MaxBodySecrets*fnv1.MaxBodySecretBytes+contract.MaxOutputBytes), "a 10 MiB body and a 1 MB response")
	g.Expect(CheckRunnerDirSizeLimit(nil, runner)).To(Succeed(), "unbounded")
	g.Expect(CheckRunnerDirSizeLimit(limit, 0)).To(Succeed(), "no runner copied")
	small, _ := ParseSizeLimit("48Mi")
	g.Expect(CheckRunnerDirSizeLimit(small, runner)).To(MatchError(ContainSubstring("48Mi cannot hold the runner (45088768 bytes)")))
	g.Expect(CheckRunnerDirSizeLimit(small, 0)).To(Succeed())
	g.Expect(CheckRunnerDirSizeLimit(ptrQuantity("12Mi"), 0)).To(MatchError(ContainSubstring("use at least 14Mi")))
}

func ptrQuantity(text string) *resource.Quantity {
	q := resource.MustParse(text)
	return &q
}
