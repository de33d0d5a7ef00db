//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// The Node.js and Python runtimes (docs/runtimes.md) on the real node: the
// images `make images` imports, the chart's runtime catalog (the runner is
// in the image: no init container), the wrappers of both Appwrite contracts.

const examplesDir = "../../examples"

// outcome is what an execution must record.
type outcome struct {
	status     fnv1.ExecutionPhase
	statusCode int
	response   string
	headers    map[string]string // every response header; nil: none
	stdout     string
	stderr     string   // exact, unless stderrHas is set
	stderrHas  []string // parts of stderr (a stack trace) instead
}

var jsonUTF8 = map[string]string{"content-type": "application/json; charset=utf-8"}

// exampleOutcomes are the results examples/*/execution.yaml promise (the
// same as internal/runtimes' TestExamples, which runs them without a cluster).
var exampleOutcomes = map[string]outcome{
	"node-v4-hello": {status: fnv1.PhaseCompleted, statusCode: 200, response: `{"message":"Hello, kfn!"}`,
		headers: map[string]string{"content-type": "application/json; charset=utf-8", "x-greeted": "kfn"},
		stdout:  "greeting kfn in en\n"},
	"node-v2-hello": {status: fnv1.PhaseCompleted, statusCode: 200, response: `{"message":"Hello, kfn!","functionId":"node-v2-hello"}`,
		stdout: "payload: {\"name\":\"kfn\"}\n"},
	"python-v4-hello": {status: fnv1.PhaseCompleted, statusCode: 200, response: `{"message":"Hello, kfn!"}`,
		headers: jsonUTF8, stdout: "greeting kfn in en\n"},
	"python-v2-hello": {status: fnv1.PhaseCompleted, statusCode: 200, response: `{"message":"Hello, kfn!","functionId":"python-v2-hello"}`,
		stdout: "payload: {'name': 'kfn'}\n"},
	"node-deps": {status: fnv1.PhaseCompleted, statusCode: 200, response: `{"slug":"hello-appwrite-on-kubernetes"}`,
		headers: jsonUTF8, stdout: "slug of \"Héllo, Appwrite on Kubernetes!\": hello-appwrite-on-kubernetes\n"},
	"python-deps": {status: fnv1.PhaseCompleted, statusCode: 200,
		response: `{"slug":"hello-appwrite-on-kubernetes","banner":"== hello-appwrite-on-kubernetes =="}`,
		headers:  jsonUTF8, stdout: "slug of 'Héllo, Appwrite on Kubernetes!': hello-appwrite-on-kubernetes\n"},
}

// facadeVariant is one more request to an example's function through the facade.
type facadeVariant struct {
	name   string
	params map[string]any // a create request in the newest format
	want   outcome
}

// exampleVariants exercise the examples' other answers: an error the code
// does not catch (the request is not the JSON its content-type says), and
// an answer the code refuses with context.error.
var exampleVariants = map[string][]facadeVariant{
	"node-v4-hello": {{
		name: "invalid JSON throws",
		params: map[string]any{"method": "POST", "path": "/greet", "body": `{"name": `,
			"headers": map[string]string{"content-type": "application/json"}},
		want: outcome{status: fnv1.PhaseFailed, statusCode: 500,
			stderrHas: []string{"SyntaxError: ", "/kfn/code/", "index.js:5:"}},
	}},
	"python-v4-hello": {{
		name: "an empty name is refused",
		params: map[string]any{"method": "POST", "path": "/greet", "body": `{"name": ""}`,
			"headers": map[string]string{"content-type": "application/json"}},
		want: outcome{status: fnv1.PhaseCompleted, statusCode: 400, response: `{"error":"name must be a non-empty string"}`,
			headers: jsonUTF8, stderr: "rejected name: \n"},
	}},
}

// TestRuntimeExamples runs every example of examples/ twice: as `kubectl
// apply -f function.yaml -f execution.yaml` creates it, in a namespace of
// its own, and through the REST facade (a synchronous create with an API
// key) in a project namespace, each with the result its execution.yaml
// promises.
func TestRuntimeExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*", "function.yaml"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(filepath.Dir(f)))
	}
	var want []string
	for name := range exampleOutcomes {
		want = append(want, name)
	}
	sort.Strings(want)
	NewWithT(t).Expect(names).To(Equal(want), "every example, and only those, has an expected outcome here")

	requireRuntimeImages(t)
	p := newProject(t)
	endpoint := portForward(t, "svc/kfn-apiserver", 80)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("apply", func(t *testing.T) {
				t.Parallel()
				g := NewWithT(t)
				ns := newNamespace(t)
				fn, ex := readExample(t, name)
				fn.Namespace, ex.Namespace = ns, ns
				g.Expect(k8s.Create(bg, fn)).To(Succeed())
				g.Expect(k8s.Create(bg, ex)).To(Succeed())
				exec := waitFor(t, ns, ex.Name, fnv1.PhaseCompleted, fnv1.PhaseFailed)
				checkStatus(t, &exec.Status, exampleOutcomes[name])
			})
			t.Run("facade", func(t *testing.T) {
				t.Parallel()
				fn, ex := readExample(t, name)
				fn.Namespace = p.namespace
				NewWithT(t).Expect(k8s.Create(bg, fn)).To(Succeed())
				waitReady(t, fn)

				t.Run("example", func(t *testing.T) {
					t.Parallel()
					format, params := facadeRequest(ex)
					executeThroughFacade(t, endpoint, p, fn.Name, format, params, exampleOutcomes[name])
				})
				for _, v := range exampleVariants[name] {
					t.Run(v.name, func(t *testing.T) {
						t.Parallel()
						executeThroughFacade(t, endpoint, p, fn.Name, "", v.params, v.want)
					})
				}
			})
		})
	}
}

// TestRuntimeThrownErrors: an exception the function does not catch fails
// the execution with status 500, an empty response, the output before it
// kept and the stack in stderr, in both runtimes and both contracts.
func TestRuntimeThrownErrors(t *testing.T) {
	failed := func(stdout string, stderrHas ...string) outcome {
		return outcome{status: fnv1.PhaseFailed, statusCode: 500, stdout: stdout, stderrHas: stderrHas}
	}
	cases := []struct {
		name, runtime, contract, entrypoint, code string
		want                                      outcome
	}{{
		name: "node-v4", runtime: "node-20", contract: "v4", entrypoint: "index.js",
		code: "function check() { throw new Error('boom'); }\nmodule.exports = async ({ log }) => { log('before'); check(); };\n",
		want: failed("before\n", "Error: boom\n", "at check (", "/kfn/code/", "index.js:1:"),
	}, {
		name: "node-v2", runtime: "node-20", contract: "v2", entrypoint: "index.js",
		code: "module.exports = async (req, res) => { console.log('before'); throw new TypeError('bad input'); };\n",
		want: failed("before\n", "TypeError: bad input\n", "/kfn/code/", "index.js:1:"),
	}, {
		name: "python-v4", runtime: "python-3.11", contract: "v4", entrypoint: "main.py",
		code: "def check():\n    raise ValueError('boom')\n\n\ndef main(context):\n    context.log('before')\n    check()\n",
		want: failed("before\n", "Traceback (most recent call last):\n", `/kfn/code/main.py", line 2, in check`, "ValueError: boom\n"),
	}, {
		name: "python-v2", runtime: "python-3.11", contract: "v2", entrypoint: "main.py",
		code: "def main(req, res):\n    print('before')\n    raise KeyError('missing')\n",
		want: failed("before\n", "Traceback (most recent call last):\n", `/kfn/code/main.py", line 3, in main`, "KeyError: 'missing'\n"),
	}}
	requireRuntimeImages(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := newNamespace(t)
			g.Expect(k8s.Create(bg, &fnv1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: "thrower", Namespace: ns},
				Spec: fnv1.FunctionSpec{
					Runtime: tc.runtime, Contract: tc.contract, Entrypoint: tc.entrypoint, Timeout: 10,
					Code: &fnv1.CodeSource{Inline: map[string]string{tc.entrypoint: tc.code}},
				},
			})).To(Succeed())
			execute(t, ns, "run", "thrower", "")
			exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
			checkStatus(t, &exec.Status, tc.want)
		})
	}
}

// requireRuntimeImages fails at once, rather than after a pod's long
// wait, when the node lacks a runtime image: `make images` builds them from
// the machine's /usr/bin/node and /usr/bin/python3.11, and skips one (with a
// notice) when its interpreter is missing.
func requireRuntimeImages(t *testing.T) {
	t.Helper()
	want := []string{"kfn.dev/node-20:dev", "kfn.dev/python-3.11:dev"}
	var missing []string
	// The kubelet reports a newly imported image with its next node status.
	NewWithT(t).Eventually(func() []string {
		nodes := &corev1.NodeList{}
		if err := k8s.List(bg, nodes); err != nil {
			return []string{err.Error()}
		}
		found := map[string]bool{}
		for _, n := range nodes.Items {
			for _, img := range n.Status.Images {
				for _, name := range img.Names {
					found[name] = true
				}
			}
		}
		missing = nil
		for _, name := range want {
			if !found[name] && !found["docker.io/"+name] {
				missing = append(missing, name)
			}
		}
		return missing
	}, 30*time.Second, time.Second).Should(BeEmpty(),
		"the node lacks the runtime images: run `make images` (needs bin/kfn, /usr/bin/node and /usr/bin/python3.11)")
}

// TestRuntimeRunsWithoutAnInitContainer: the runtime images hold the
// runner, so their Jobs have no init container to copy it in.
func TestRuntimeRunsWithoutAnInitContainer(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	requireRuntimeImages(t)
	ns := newNamespace(t)
	g.Expect(k8s.Create(bg, &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "napper", Namespace: ns},
		Spec: fnv1.FunctionSpec{
			Runtime: "python-3.11", Timeout: 30, // the default entrypoint, main.py
			Code: &fnv1.CodeSource{Inline: map[string]string{"main.py": `import time


def main(context):
    time.sleep(3)  # long enough to look at the Job
    return context.res.text("rested")
`}},
		},
	})).To(Succeed())
	execute(t, ns, "run", "napper", "")

	// The Job goes once the result is recorded: read it while it runs.
	job := &batchv1.Job{}
	g.Eventually(func() error {
		exec := &fnv1.Execution{}
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "run"}, exec); err != nil {
			return err
		}
		if exec.Status.JobName == "" {
			return fmt.Errorf("no Job yet: %+v", exec.Status)
		}
		return k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: exec.Status.JobName}, job)
	}, eventually, poll).Should(Succeed())
	pod := job.Spec.Template.Spec
	g.Expect(pod.InitContainers).To(BeEmpty())
	g.Expect(pod.Containers).To(HaveLen(1))
	g.Expect(pod.Containers[0].Image).To(Equal("kfn.dev/python-3.11:dev"))
	// The runner from the image; no entrypoint: the wrapper's default.
	g.Expect(pod.Containers[0].Command).To(Equal([]string{"/opt/kfn/bin/kfn", "run", "--",
		"python3", "/opt/kfn/runtime/kfn_python.py"}))

	exec := waitFor(t, ns, "run", fnv1.PhaseCompleted, fnv1.PhaseFailed)
	checkStatus(t, &exec.Status, outcome{status: fnv1.PhaseCompleted, statusCode: 200, response: "rested",
		headers: map[string]string{"content-type": "text/plain; charset=utf-8"}})
}

// readExample reads an example's Function and Execution as kubectl would:
// strictly (no unknown field), with no namespace of their own.
func readExample(t *testing.T, name string) (*fnv1.Function, *fnv1.Execution) {
	t.Helper()
	fn, ex := &fnv1.Function{}, &fnv1.Execution{}
	readManifest(t, filepath.Join(examplesDir, name, "function.yaml"), fn, "Function")
	readManifest(t, filepath.Join(examplesDir, name, "execution.yaml"), ex, "Execution")
	NewWithT(t).Expect(ex.Spec.FunctionName).To(Equal(fn.Name), "examples/%s: the execution runs the example's function", name)
	return fn, ex
}

func readManifest(t *testing.T, path string, obj client.Object, kind string) {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.UnmarshalStrict(data, obj)).To(Succeed(), path)
	g.Expect(obj.GetObjectKind().GroupVersionKind()).To(Equal(fnv1.GroupVersion.WithKind(kind)), path)
	g.Expect(obj.GetNamespace()).To(BeEmpty(), "%s: applied to the current namespace", path)
}

// checkStatus compares an Execution's record with what it must be.
func checkStatus(t *testing.T, st *fnv1.ExecutionStatus, want outcome) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(st.Status).To(Equal(want.status), "%+v", st)
	g.Expect(st.StatusCode).To(Equal(int32(want.statusCode)), "%+v", st)
	g.Expect(st.Response).To(Equal(want.response))
	if want.headers == nil {
		g.Expect(st.ResponseHeaders).To(BeEmpty())
	} else {
		g.Expect(st.ResponseHeaders).To(Equal(want.headers))
	}
	g.Expect(st.Stdout).To(Equal(want.stdout))
	checkStderr(g, st.Stderr, want)
	g.Expect(st.Truncated).To(BeEmpty())
	if want.status == fnv1.PhaseFailed {
		g.Expect(st.ExitCode).To(Equal(ptr.To[int32](1)))
		g.Expect(st.Reason).To(Equal(fnv1.ReasonFunctionFailed))
	} else {
		g.Expect(st.ExitCode).To(Equal(ptr.To[int32](0)))
	}
}

func checkStderr(g Gomega, stderr string, want outcome) {
	if want.stderrHas == nil {
		g.ExpectWithOffset(1, stderr).To(Equal(want.stderr))
		return
	}
	for _, part := range want.stderrHas {
		g.ExpectWithOffset(1, stderr).To(ContainSubstring(part))
	}
}

// facadeRequest is the create request an Appwrite client sends for an
// Execution: an Appwrite 1.0 one (data, response format 1.0.0) or a 1.4+
// one (body, method, path, headers; the newest format).
func facadeRequest(ex *fnv1.Execution) (format string, params map[string]any) {
	if ex.Spec.Data != "" {
		return "1.0.0", map[string]any{"data": ex.Spec.Data, "async": false}
	}
	params = map[string]any{"body": ex.Spec.Body, "async": false}
	if ex.Spec.Method != "" {
		params["method"] = ex.Spec.Method
	}
	if ex.Spec.Path != "" {
		params["path"] = ex.Spec.Path
	}
	if len(ex.Spec.Headers) > 0 {
		params["headers"] = ex.Spec.Headers
	}
	return "", params
}

// executeThroughFacade creates a synchronous execution with the project's
// API key and checks the record it answers, in the format asked for, and
// the Execution object behind it.
func executeThroughFacade(t *testing.T, endpoint string, p project, function, format string, params map[string]any, want outcome) {
	t.Helper()
	g := NewWithT(t)
	payload, err := json.Marshal(params)
	g.Expect(err).NotTo(HaveOccurred())
	httpClient := &http.Client{Timeout: 3 * time.Minute}
	var code int
	var rec map[string]any
	// The facade reads Functions from its own cache: a Function created
	// a moment ago may not be there yet (404, nothing created).
	g.Eventually(func() int {
		req, err := http.NewRequest(http.MethodPost, endpoint+"/v1/functions/"+function+"/executions", bytes.NewReader(payload))
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Appwrite-Project", p.namespace)
		req.Header.Set("X-Appwrite-Key", p.apiKey)
		if format != "" {
			req.Header.Set("X-Appwrite-Response-Format", format)
		}
		resp, err := httpClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		rec = nil
		g.Expect(json.NewDecoder(resp.Body).Decode(&rec)).To(Succeed())
		code = resp.StatusCode
		return code
	}, eventually, time.Second).ShouldNot(Equal(http.StatusNotFound), func() string { return fmt.Sprint(rec) })
	g.Expect(code).To(Equal(http.StatusCreated), "%v", rec)

	g.Expect(rec).To(HaveKeyWithValue("functionId", function))
	g.Expect(rec).To(HaveKeyWithValue("status", string(want.status)))
	var stderr any
	if format == "1.0.0" {
		g.Expect(rec).To(HaveKeyWithValue("statusCode", BeNumerically("==", want.statusCode)))
		g.Expect(rec).To(HaveKeyWithValue("response", want.response))
		g.Expect(rec).To(HaveKeyWithValue("stdout", want.stdout))
		g.Expect(rec).NotTo(HaveKey("responseHeaders"), "not in Appwrite 1.0's model")
		stderr = rec["stderr"]
	} else {
		g.Expect(rec).To(HaveKeyWithValue("responseStatusCode", BeNumerically("==", want.statusCode)))
		g.Expect(rec).To(HaveKeyWithValue("responseBody", want.response))
		g.Expect(rec).To(HaveKeyWithValue("logs", want.stdout))
		// A synchronous create shows every response header.
		headers := map[string]string{}
		list, ok := rec["responseHeaders"].([]any)
		g.Expect(ok).To(BeTrue(), "responseHeaders: %v", rec["responseHeaders"])
		for _, h := range list {
			h := h.(map[string]any)
			headers[h["name"].(string)] = h["value"].(string)
		}
		if want.headers == nil {
			g.Expect(headers).To(BeEmpty())
		} else {
			g.Expect(headers).To(Equal(want.headers))
		}
		stderr = rec["errors"]
	}
	g.Expect(stderr).To(BeAssignableToTypeOf(""), "%v", rec)
	checkStderr(g, stderr.(string), want)

	// The record is the Execution's status.
	id, _ := rec["$id"].(string)
	g.Expect(id).NotTo(BeEmpty())
	exec := &fnv1.Execution{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: p.namespace, Name: id}, exec)).To(Succeed())
	g.Expect(exec.Spec.FunctionName).To(Equal(function))
	checkStatus(t, &exec.Status, want)
}

// waitReady waits until the operator reports the Function ready.
func waitReady(t *testing.T, fn *fnv1.Function) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() bool {
		g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(fn), fn)).To(Succeed())
		return meta.IsStatusConditionTrue(fn.Status.Conditions, fnv1.FunctionReady)
	}, eventually, poll).Should(BeTrue(), "function %s: %+v", fn.Name, fn.Status.Conditions)
}
