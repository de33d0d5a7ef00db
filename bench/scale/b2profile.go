package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/bench/internal/latency"
)

// burstFunctionName is B2's function: the node-20 catalog runtime, whose
// image carries the runner (no init container), as in B1; the bare Jobs
// run the same image (`node -e 0`).
const burstFunctionName = "burst"

// burstFunction allows 120 s to run: with the caps lifted all 200 pods
// wait for the node at once, and the default 30 s (its Job's deadline
// is the timeout plus the time allowed to start) would fail those the node
// reaches last, which measures the deadline rather than the throughput.
func burstFunction(ns string) *fnv1.Function {
	fn := latency.NodeFunction(ns, burstFunctionName, 120)
	fn.Spec.MaxConcurrency = 1000
	fn.Spec.SuccessfulExecutionsHistoryLimit = ptr.To[int32](1000000)
	fn.Spec.FailedExecutionsHistoryLimit = ptr.To[int32](1000000)
	return fn
}

// podPhases notes, for each pod of a burst that finishes, where its time
// went: until the pod object exists (the client's create, the Job
// controller, and for kfn the facade and the operator), until it is
// scheduled, until its main container started (the kubelet: sandbox,
// network, init container if any, container start), and its run.
// Kubernetes stamps these times to the second: the percentiles over a
// burst are what they are good for.
type podPhases struct {
	start time.Time
	mu    sync.Mutex
	seen  map[string][4]float64
}

var phaseNames = [4]string{"pod created", "→ scheduled", "→ container started", "→ container exited"}

// watchPods follows ns's pods until ctx ends.
func (b *bench) watchPods(ctx context.Context, ns string, n int, start time.Time) *podPhases {
	pp := &podPhases{start: start, seen: map[string][4]float64{}}
	b.startWatch(ctx, &corev1.PodList{}, ns, n, start, func(o client.Object) (bool, bool) {
		pp.note(o.(*corev1.Pod))
		return latency.Exited(o.(*corev1.Pod)), true
	})
	return pp
}

func (pp *podPhases) note(p *corev1.Pod) {
	var scheduled time.Time
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = c.LastTransitionTime.Time
		}
	}
	if len(p.Status.ContainerStatuses) == 0 || scheduled.IsZero() {
		return
	}
	t := p.Status.ContainerStatuses[0].State.Terminated
	if t == nil {
		return
	}
	created := p.CreationTimestamp.Time
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.seen[p.Name] = [4]float64{
		created.Sub(pp.start).Seconds(), scheduled.Sub(created).Seconds(),
		t.StartedAt.Sub(scheduled).Seconds(), t.FinishedAt.Sub(t.StartedAt.Time).Seconds(),
	}
}

// String is each phase's p50 and p90 in seconds.
func (pp *podPhases) String() string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var parts []string
	for i, name := range phaseNames {
		var xs []float64
		for _, v := range pp.seen {
			xs = append(xs, v[i])
		}
		sort.Float64s(xs)
		parts = append(parts, fmt.Sprintf("%s p50 %.0f s p90 %.0f s", name, kbench.Percentile(xs, 50), kbench.Percentile(xs, 90)))
	}
	return fmt.Sprintf("%d pods: %s", len(pp.seen), strings.Join(parts, ", "))
}

// burstProcs are the processes a burst keeps busy: the node's as well as
// kfn's and the control plane's; the meter reports the rest of the machine
// (containerd's shims, runc, the pods themselves) as "everything else".
func (b *bench) burstProcs() []kbench.Proc {
	pidFile := func(name string) func() (int, error) {
		return func() (int, error) { return b.env.PIDFile(name) }
	}
	procs := b.cpuProcs()
	for _, c := range []string{"kube-controller-manager", "kube-scheduler", "kubelet", "containerd"} {
		procs = append(procs, kbench.Proc{Name: c, Find: pidFile(c)})
	}
	return procs
}

// profileBurst starts measuring a burst's CPU and pod phases; the function
// it returns reports them.
func (b *bench) profileBurst(ctx context.Context, what, ns string, n int, start time.Time) func() {
	ctx, cancel := context.WithCancel(ctx)
	pods := b.watchPods(ctx, ns, n, start)
	cpu := kbench.StartCPU(b.burstProcs()...)
	return func() {
		used := cpu.Stop()
		cancel()
		b.r.rawf("B2 burst profile, %s: %s", what, used)
		b.r.rawf("B2 burst profile, %s: %s", what, pods)
	}
}
