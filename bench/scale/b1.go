package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/bench/internal/latency"
)

func metav1ListOptions(labelSelector string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: labelSelector}
}

// The node-20 rows' targets: a Node.js function's record within 15% of its
// bare pod's container exit, and within 35% of its bare Job's Complete.
const (
	nodeVsExit     = 1.15
	nodeVsComplete = 0.35
)

// b1: latency of one no-op run, one at a time (bench/latency).
func (b *bench) b1(ctx context.Context) error {
	res, err := latency.Run(ctx, b.env, latency.Options{Runs: b.c.runs, Timeout: 2 * time.Minute, Facade: b.facade, Node: b.c.node, Run: b.run, CleanupWait: 3 * time.Minute})
	if err != nil {
		return err
	}
	bare, _ := res.Get(latency.BareJob)
	rest, ok := res.Get(latency.RESTCreate)
	if !ok {
		return fmt.Errorf("no REST variant")
	}
	exec, _ := res.Get(latency.Execution)
	p := kbench.Percentile
	b.b1Rows("B1 sync REST create", rest, "bare Job → Complete", bare.Done, 0, 50, 90)
	b.b1Rows("B1 sync REST create", rest, "bare pod container exit", bare.Exited, 0, 50, 90)
	b.b1Rows("B1 Execution (k8s API)", exec, "bare Job → Complete", bare.Done, 0, 50)
	if b.c.node {
		nodeBare, _ := res.Get(latency.NodeJob)
		for _, name := range []string{latency.NodeExecution, latency.NodeREST} {
			v, _ := res.Get(name)
			what := "B1 node-20 Execution (k8s API)"
			if name == latency.NodeREST {
				what = "B1 node-20 sync REST create"
			}
			b.b1Rows(what, v, "bare node Job → Complete", nodeBare.Done, nodeVsComplete, 50, 90)
			b.b1Rows(what, v, "bare node pod container exit", nodeBare.Exited, nodeVsExit, 50, 90)
		}
	}
	b.r.rawf("B1: %d runs of each variant, one at a time, interleaved, after one warm-up each; p50 / p90 / max in seconds:", res.Runs)
	for _, v := range res.Variants {
		line := fmt.Sprintf("B1   %-40s done %.2f / %.2f / %.2f", v.Name, p(v.Done, 50), p(v.Done, 90), v.Done[len(v.Done)-1])
		if len(v.Exited) > 0 {
			line += fmt.Sprintf("; container exited %.2f / %.2f / %.2f", p(v.Exited, 50), p(v.Exited, 90), v.Exited[len(v.Exited)-1])
		}
		b.r.rawf("%s", line)
	}
	initJob, _ := res.Get(latency.InitJob)
	b.r.rawf("B1   runner init container cost (container exited p50, with − without): +%.2f s", p(initJob.Exited, 50)-p(bare.Exited, 50))
	return nil
}

// b1Rows adds a row per percentile: v's time to done against a baseline's
// samples; a positive target is the highest ratio that meets it.
func (b *bench) b1Rows(what string, v latency.Variant, vs string, base []float64, target float64, percentiles ...float64) {
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	for _, q := range percentiles {
		kfn, baseline := kbench.Percentile(v.Done, q), kbench.Percentile(base, q)
		g := noGoal
		if target > 0 {
			g = atMost(kfn/baseline, target, fmt.Sprintf("≤ %.2f×", target))
		}
		b.r.row(fmt.Sprintf("%s p%.0f vs %s", what, q, vs), sec(kfn), sec(baseline), kbench.Ratio(kfn, baseline), g)
	}
}
