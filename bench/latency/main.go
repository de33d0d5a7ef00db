// Command latency measures what kfn adds on top of Kubernetes: it runs the
// same no-op workload as a bare Job, as a bare Job with kfn's runner init
// container, and as a kfn Execution, one at a time and interleaved, on the
// cluster in $KUBECONFIG, and prints each one's latency and the ratios.
//
//	go run ./bench/latency --runs 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

const (
	image       = "kfn.dev/busybox:test"
	runnerImage = "kfn.dev/kfn:dev"
)

func main() {
	runs := flag.Int("runs", 10, "runs of each variant")
	timeout := flag.Duration("timeout", 2*time.Minute, "longest wait for one run")
	flag.Parse()
	if err := run(*runs, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

type sample struct {
	// done is when the work's own completion was visible: the Job's
	// Complete condition, or the Execution's completed status.
	done time.Duration
	// exited is when the workload's container was seen terminated (Jobs only).
	exited time.Duration
}

func run(runs int, timeout time.Duration) error {
	scheme := kube.NewScheme()
	c, err := client.NewWithWatch(ctrl.GetConfigOrDie(), client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-latency-"}}
	if err := c.Create(ctx, ns); err != nil {
		return err
	}
	defer func() { _ = c.Delete(ctx, ns) }()
	fn := &fnv1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "noop", Namespace: ns.Name},
		Spec:       fnv1.FunctionSpec{Image: image, Command: []string{"true"}, Timeout: 30},
	}
	if err := c.Create(ctx, fn); err != nil {
		return err
	}

	variants := []struct {
		name string
		run  func(context.Context, client.WithWatch, string, int) (sample, error)
	}{
		{"bare Job", func(ctx context.Context, c client.WithWatch, ns string, i int) (sample, error) {
			return runJob(ctx, c, ns, fmt.Sprintf("bare-%d", i), false)
		}},
		{"bare Job + runner init container", func(ctx context.Context, c client.WithWatch, ns string, i int) (sample, error) {
			return runJob(ctx, c, ns, fmt.Sprintf("init-%d", i), true)
		}},
		{"kfn Execution", func(ctx context.Context, c client.WithWatch, ns string, i int) (sample, error) {
			return runExecution(ctx, c, ns, fmt.Sprintf("exec-%d", i))
		}},
	}
	results := make([][]sample, len(variants))
	// One warm-up run of each, not counted: the first pod on a node pays
	// for things (image unpacking, cgroup setup) no later one does.
	for i := -1; i < runs; i++ {
		for v, variant := range variants {
			runCtx, cancel := context.WithTimeout(ctx, timeout)
			s, err := variant.run(runCtx, c, ns.Name, i+1)
			cancel()
			if err != nil {
				return fmt.Errorf("%s run %d: %w", variant.name, i+1, err)
			}
			if i >= 0 {
				results[v] = append(results[v], s)
			}
		}
	}

	fmt.Printf("%d runs each, one at a time, interleaved (median / p90, seconds)\n", runs)
	fmt.Printf("%-34s %-22s %s\n", "variant", "create → done", "create → container exited")
	for v, variant := range variants {
		done, exited := column(results[v], func(s sample) time.Duration { return s.done }), column(results[v], func(s sample) time.Duration { return s.exited })
		ex := "-"
		if exited[0] > 0 {
			ex = fmt.Sprintf("%.2f / %.2f", median(exited), p90(exited))
		}
		fmt.Printf("%-34s %-22s %s\n", variant.name, fmt.Sprintf("%.2f / %.2f", median(done), p90(done)), ex)
	}
	bareDone := median(column(results[0], func(s sample) time.Duration { return s.done }))
	bareExit := median(column(results[0], func(s sample) time.Duration { return s.exited }))
	initExit := median(column(results[1], func(s sample) time.Duration { return s.exited }))
	execDone := median(column(results[2], func(s sample) time.Duration { return s.done }))
	fmt.Printf("\nratio Execution completed / bare Job Complete:         %.2f\n", execDone/bareDone)
	fmt.Printf("ratio Execution completed / bare Job container exited: %.2f\n", execDone/bareExit)
	fmt.Printf("runner init container cost (container exited, with / without): %.2f (+%.2f s)\n", initExit/bareExit, initExit-bareExit)
	return nil
}

func runJob(ctx context.Context, c client.WithWatch, ns, name string, withInit bool) (sample, error) {
	restricted := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	pod := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "work", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"true"}, SecurityContext: restricted}},
	}
	if withInit {
		pod.Volumes = []corev1.Volume{{Name: "kfn", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		pod.InitContainers = []corev1.Container{{Name: "install-runner", Image: runnerImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"/kfn", "copy-self", "/kfn-install/bin/kfn"}, SecurityContext: restricted,
			VolumeMounts: []corev1.VolumeMount{{Name: "kfn", MountPath: "/kfn-install"}}}}
		pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kfn", MountPath: "/kfn"}}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"bench": name}}, Spec: pod}},
	}
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
			if p, ok := ev.Object.(*corev1.Pod); ok && s.exited == 0 && exited(p) {
				s.exited = time.Since(start)
			}
		case ev := <-jobs.ResultChan():
			if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type != watch.Deleted && jobComplete(j) {
				s.done = time.Since(start)
			}
		case <-ctx.Done():
			return s, fmt.Errorf("job %s: %w", name, ctx.Err())
		}
	}
	return s, c.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
}

func runExecution(ctx context.Context, c client.WithWatch, ns, name string) (sample, error) {
	execs, err := c.Watch(ctx, &fnv1.ExecutionList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return sample{}, err
	}
	defer execs.Stop()
	start := time.Now()
	if err := c.Create(ctx, &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       fnv1.ExecutionSpec{FunctionName: "noop"},
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

func exited(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "work" && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func column(samples []sample, f func(sample) time.Duration) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = f(s).Seconds()
	}
	sort.Float64s(out)
	return out
}

func median(sorted []float64) float64 { return sorted[len(sorted)/2] }

// p90 is the nearest-rank 90th percentile.
func p90(sorted []float64) float64 { return sorted[(len(sorted)*9+9)/10-1] }
