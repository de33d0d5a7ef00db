// Package latency measures what kfn adds to one function run on top of
// Kubernetes: the same no-op workload as a bare Job, as a bare Job with
// kfn's runner init container, as a kfn Execution created with the
// Kubernetes API, and as a synchronous create through the REST facade; and
// a no-op Node.js function of the node-20 catalog runtime (the runner in the
// image, no init container) against a bare Job of the same image running
// `node -e 0`. One at a time and interleaved (B1 of `make bench`;
// `go run ./bench/latency`).
package latency

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
)

const (
	// Image is the no-op workload's image (imported by `make cluster-up`).
	Image = "kfn.dev/busybox:test"
	// NodeImage is the node-20 catalog runtime's image (built and imported
	// by `make images`), NodeRuntime its catalog name.
	NodeImage   = "kfn.dev/node-20:dev"
	NodeRuntime = "node-20"
	runnerImage = "kfn.dev/kfn:dev"
	function    = "noop"
	// nodeFunction is a no-op v4 Node.js function of the node-20 runtime.
	nodeFunction   = "noop-node"
	nodeEntrypoint = "index.mjs"
	nodeCode       = "export default async ({ res }) => res.empty();\n"
)

// Variant names.
const (
	BareJob       = "bare Job"
	InitJob       = "bare Job + runner init container"
	Execution     = "kfn Execution (Kubernetes API)"
	RESTCreate    = "kfn sync create (REST facade)"
	NodeJob       = "bare Job node-20 image (node -e 0)"
	NodeExecution = "kfn Execution node-20 (Kubernetes API)"
	NodeREST      = "kfn sync create node-20 (REST facade)"
)

// Options of a latency run.
type Options struct {
	Runs    int
	Timeout time.Duration // longest wait for one run
	// Facade, when set, adds the REST variants: POST .../executions
	// (synchronous) with the project's API key.
	Facade *kbench.Facade
	// Node adds the node-20 runtime variants and their bare Job.
	Node bool
	Run  string // bench run label of the namespace
	// CleanupWait, when positive, is how long Run waits for its namespace
	// to be gone at the end, so its deletion does not overlap what follows.
	CleanupWait time.Duration
}

// Variant is one variant's samples, in seconds, sorted.
type Variant struct {
	Name   string
	Done   []float64 // create → Job Complete / Execution completed / REST answer
	Exited []float64 // create → the workload container seen terminated (Jobs only)
}

// Result of a run.
type Result struct {
	Runs      int
	Namespace string
	Variants  []Variant
}

// Get returns a variant by name.
func (r Result) Get(name string) (Variant, bool) {
	for _, v := range r.Variants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

type sample struct {
	done, exited time.Duration
}

// variant is one way of running the no-op workload; run measures run i.
type variant struct {
	name string
	run  func(ctx context.Context, i int) (sample, error)
}

// Run measures every variant opts.Runs times (after one uncounted warm-up
// run each), interleaved, in a new namespace it deletes at the end.
func Run(ctx context.Context, env *kbench.Env, opts Options) (Result, error) {
	p, err := env.NewProject(ctx, "bench-latency-", opts.Run)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = env.DeleteNamespace(context.WithoutCancel(ctx), p.Namespace, opts.CleanupWait) }()
	if err := createFunctions(ctx, env.Client, p.Namespace, opts.Node); err != nil {
		return Result{}, err
	}
	vs := variants(env.Client, p, opts)
	samples, err := measure(ctx, vs, opts)
	if err != nil {
		return Result{}, err
	}
	res := Result{Runs: opts.Runs, Namespace: p.Namespace}
	for v, variant := range vs {
		var done, exited []time.Duration
		for _, s := range samples[v] {
			done = append(done, s.done)
			if s.exited > 0 {
				exited = append(exited, s.exited)
			}
		}
		res.Variants = append(res.Variants, Variant{Name: variant.name, Done: kbench.Sorted(done), Exited: kbench.Sorted(exited)})
	}
	return res, nil
}

// createFunctions makes the no-op Function (and the Node.js one) and waits
// (bounded) until they are Ready, so no run meets a function not yet set up.
func createFunctions(ctx context.Context, c client.Client, ns string, withNode bool) error {
	fns := []*fnv1.Function{{
		ObjectMeta: metav1.ObjectMeta{Name: function, Namespace: ns},
		Spec:       fnv1.FunctionSpec{Image: Image, Command: []string{"true"}, Timeout: 30},
	}}
	if withNode {
		fns = append(fns, NodeFunction(ns, nodeFunction, 30))
	}
	for _, fn := range fns {
		if err := c.Create(ctx, fn); err != nil {
			return err
		}
	}
	return WaitReady(ctx, c, fns...)
}

// NodeFunction is a no-op v4 Node.js function of the node-20 catalog
// runtime, whose image carries the runner: its pod has no init container.
func NodeFunction(ns, name string, timeout int32) *fnv1.Function {
	return &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: fnv1.FunctionSpec{Runtime: NodeRuntime, Entrypoint: nodeEntrypoint, Timeout: timeout,
			Code: &fnv1.CodeSource{Inline: map[string]string{nodeEntrypoint: nodeCode}}},
	}
}

// WaitReady waits (up to a minute) until the Functions are Ready.
func WaitReady(ctx context.Context, c client.Client, fns ...*fnv1.Function) error {
	for _, fn := range fns {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			err := c.Get(ctx, types.NamespacedName{Namespace: fn.Namespace, Name: fn.Name}, fn)
			return err == nil && meta.IsStatusConditionTrue(fn.Status.Conditions, fnv1.FunctionReady), client.IgnoreNotFound(err)
		})
		if err != nil {
			return fmt.Errorf("function %s not ready: %w", fn.Name, err)
		}
	}
	return nil
}

// variants are the ways of running the workload opts asks for, in the
// order they are interleaved.
func variants(c client.WithWatch, p *kbench.Project, opts Options) []variant {
	ns := p.Namespace
	job := func(name, prefix string, build func(ns, name string) *batchv1.Job) variant {
		return variant{name, func(ctx context.Context, i int) (sample, error) {
			return runJob(ctx, c, build(ns, fmt.Sprintf("%s-%d", prefix, i)))
		}}
	}
	exec := func(name, fn, prefix string) variant {
		return variant{name, func(ctx context.Context, i int) (sample, error) {
			return runExecution(ctx, c, ns, fn, fmt.Sprintf("%s-%d", prefix, i))
		}}
	}
	rest := func(name, fn string) variant {
		return variant{name, func(ctx context.Context, _ int) (sample, error) { return runREST(ctx, opts.Facade, p, fn) }}
	}
	vs := []variant{
		job(BareJob, "bare", func(ns, name string) *batchv1.Job { return Job(ns, name, false) }),
		job(InitJob, "init", func(ns, name string) *batchv1.Job { return Job(ns, name, true) }),
		exec(Execution, function, "exec"),
	}
	if opts.Facade != nil {
		vs = append(vs, rest(RESTCreate, function))
	}
	if opts.Node {
		vs = append(vs, job(NodeJob, "node", NodeJobFor), exec(NodeExecution, nodeFunction, "node-exec"))
		if opts.Facade != nil {
			vs = append(vs, rest(NodeREST, nodeFunction))
		}
	}
	return vs
}

// measure runs every variant opts.Runs times, interleaved, after one
// warm-up run of each that is not counted: the first pod on a node pays
// for things (image unpacking, cgroup setup) no later one does.
func measure(ctx context.Context, vs []variant, opts Options) ([][]sample, error) {
	samples := make([][]sample, len(vs))
	for i := -1; i < opts.Runs; i++ {
		for v, variant := range vs {
			runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
			s, err := variant.run(runCtx, i+1)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %w", variant.name, i+1, err)
			}
			if i >= 0 {
				samples[v] = append(samples[v], s)
			}
		}
	}
	return samples, nil
}

// Job is the bare Job of the no-op workload: the pod kfn would run, with
// the same restricted security settings, optionally with the runner's init
// container; its pods carry the label bench=<name>.
func Job(ns, name string, withInit bool) *batchv1.Job {
	job := bareJob(ns, name, Image, []string{"true"})
	if withInit {
		pod := &job.Spec.Template.Spec
		pod.Volumes = []corev1.Volume{{Name: "kfn", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		pod.InitContainers = []corev1.Container{{Name: "install-runner", Image: runnerImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"/kfn", "copy-self", "/kfn-install/bin/kfn"}, SecurityContext: restricted(),
			VolumeMounts: []corev1.VolumeMount{{Name: "kfn", MountPath: "/kfn-install"}}}}
		pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kfn", MountPath: "/kfn"}}
	}
	return job
}

// NodeJobFor is the bare Job of the node-20 runtime's image doing nothing
// (`node -e 0`, no init container, no runner): what a Node.js function pod
// costs Kubernetes and Node.js alone.
func NodeJobFor(ns, name string) *batchv1.Job {
	return bareJob(ns, name, NodeImage, []string{"node", "-e", "0"})
}

func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// bareJob runs command in image as kfn would run a function pod.
func bareJob(ns, name, image string, command []string) *batchv1.Job {
	pod := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "work", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: command, SecurityContext: restricted()}},
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"bench": "job"}},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"bench": name}}, Spec: pod}},
	}
}

func runJob(ctx context.Context, c client.WithWatch, job *batchv1.Job) (sample, error) {
	ns, name := job.Namespace, job.Name
	pods, err := c.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels{"bench": name})
	if err != nil {
		return sample{}, err
	}
	defer pods.Stop()
	jobs, err := c.Watch(ctx, &batchv1.JobList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return sample{}, err
	}
	defer jobs.Stop()

	start := time.Now()
	if err := c.Create(ctx, job); err != nil {
		return sample{}, err
	}
	var s sample
	for s.done == 0 || s.exited == 0 {
		select {
		case ev := <-pods.ResultChan():
			if p, ok := ev.Object.(*corev1.Pod); ok && s.exited == 0 && Exited(p) {
				s.exited = time.Since(start)
			}
		case ev := <-jobs.ResultChan():
			if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type != watch.Deleted && JobFinished(j) {
				s.done = time.Since(start)
			}
		case <-ctx.Done():
			return s, fmt.Errorf("job %s: %w", name, ctx.Err())
		}
	}
	return s, c.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
}

func runExecution(ctx context.Context, c client.WithWatch, ns, fn, name string) (sample, error) {
	execs, err := c.Watch(ctx, &fnv1.ExecutionList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return sample{}, err
	}
	defer execs.Stop()
	start := time.Now()
	if err := c.Create(ctx, &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       fnv1.ExecutionSpec{FunctionName: fn},
	}); err != nil {
		return sample{}, err
	}
	for {
		select {
		case ev := <-execs.ResultChan():
			e, ok := ev.Object.(*fnv1.Execution)
			if !ok || !e.Status.Status.IsFinished() {
				continue
			}
			if e.Status.Status != fnv1.PhaseCompleted {
				return sample{}, fmt.Errorf("execution %s %s: %s", name, e.Status.Status, e.Status.Message)
			}
			return sample{done: time.Since(start)}, nil
		case <-ctx.Done():
			return sample{}, fmt.Errorf("execution %s: %w", name, ctx.Err())
		}
	}
}

// runREST is one synchronous create through the facade (newest response
// format): the time until the 201 with the final record.
func runREST(ctx context.Context, f *kbench.Facade, p *kbench.Project, fn string) (sample, error) {
	start := time.Now()
	code, body, err := f.Do(ctx, http.MethodPost, "/functions/"+fn+"/executions", p, []byte(`{"body":"","async":false}`), nil)
	d := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	var rec struct {
		Status string `json:"status"`
		ID     string `json:"$id"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &rec) != nil || rec.Status != string(fnv1.PhaseCompleted) {
		return sample{}, fmt.Errorf("POST executions: %d %s", code, truncate(body))
	}
	return sample{done: d}, nil
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// Exited says whether the pod's workload container has terminated.
func Exited(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "work" && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// JobFinished says whether a Job is Complete (or Failed).
func JobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Print writes the per-variant table and the ratios.
func Print(w io.Writer, r Result) {
	fmt.Fprintf(w, "%d runs each, one at a time, interleaved (median / p90, seconds)\n", r.Runs)
	fmt.Fprintf(w, "%-38s %-22s %s\n", "variant", "create → done", "create → container exited")
	for _, v := range r.Variants {
		ex := "-"
		if len(v.Exited) > 0 {
			ex = fmt.Sprintf("%.2f / %.2f", kbench.Percentile(v.Exited, 50), kbench.Percentile(v.Exited, 90))
		}
		fmt.Fprintf(w, "%-38s %-22s %s\n", v.Name, fmt.Sprintf("%.2f / %.2f", kbench.Percentile(v.Done, 50), kbench.Percentile(v.Done, 90)), ex)
	}
	p50 := func(xs []float64) float64 { return kbench.Percentile(xs, 50) }
	p90 := func(xs []float64) float64 { return kbench.Percentile(xs, 90) }
	fmt.Fprintln(w)
	for _, pair := range [][2]string{{Execution, BareJob}, {RESTCreate, BareJob}, {NodeExecution, NodeJob}, {NodeREST, NodeJob}} {
		v, ok := r.Get(pair[0])
		bare, okBare := r.Get(pair[1])
		if !ok || !okBare {
			continue
		}
		fmt.Fprintf(w, "%s / %s Complete:          p50 %s  p90 %s\n", v.Name, bare.Name, kbench.Ratio(p50(v.Done), p50(bare.Done)), kbench.Ratio(p90(v.Done), p90(bare.Done)))
		fmt.Fprintf(w, "%s / %s container exited:  p50 %s  p90 %s\n", v.Name, bare.Name, kbench.Ratio(p50(v.Done), p50(bare.Exited)), kbench.Ratio(p90(v.Done), p90(bare.Exited)))
	}
	bare, _ := r.Get(BareJob)
	initJob, _ := r.Get(InitJob)
	fmt.Fprintf(w, "runner init container cost (container exited, with / without): %s (+%.2f s)\n",
		kbench.Ratio(p50(initJob.Exited), p50(bare.Exited)), p50(initJob.Exited)-p50(bare.Exited))
}
