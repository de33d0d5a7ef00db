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

// b1: latency of one no-op run, one at a time (bench/latency).
func (b *bench) b1(ctx context.Context) error {
	res, err := latency.Run(ctx, b.env, latency.Options{Runs: b.c.runs, Timeout: 2 * time.Minute, Facade: b.facade, Run: b.run, CleanupWait: 3 * time.Minute})
	if err != nil {
		return err
	}
	bare, _ := res.Get(latency.BareJob)
	rest, ok := res.Get(latency.RESTCreate)
	if !ok {
		return fmt.Errorf("no REST variant")
	}
	exec, _ := res.Get(latency.Execution)
	initJob, _ := res.Get(latency.InitJob)
	p := kbench.Percentile
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	for _, q := range []float64{50, 90} {
		b.r.row(fmt.Sprintf("B1 sync REST create p%.0f vs bare Job → Complete", q), sec(p(rest.Done, q)), sec(p(bare.Done, q)), kbench.Ratio(p(rest.Done, q), p(bare.Done, q)), "—")
	}
	for _, q := range []float64{50, 90} {
		b.r.row(fmt.Sprintf("B1 sync REST create p%.0f vs bare pod container exit", q), sec(p(rest.Done, q)), sec(p(bare.Exited, q)), kbench.Ratio(p(rest.Done, q), p(bare.Exited, q)), "—")
	}
	b.r.row("B1 Execution (k8s API) p50 vs bare Job → Complete", sec(p(exec.Done, 50)), sec(p(bare.Done, 50)), kbench.Ratio(p(exec.Done, 50), p(bare.Done, 50)), "—")
	b.r.rawf("B1: %d runs of each variant, one at a time, interleaved, after one warm-up each; p50 / p90 / max in seconds:", res.Runs)
	for _, v := range res.Variants {
		line := fmt.Sprintf("B1   %-34s done %.2f / %.2f / %.2f", v.Name, p(v.Done, 50), p(v.Done, 90), v.Done[len(v.Done)-1])
		if len(v.Exited) > 0 {
			line += fmt.Sprintf("; container exited %.2f / %.2f / %.2f", p(v.Exited, 50), p(v.Exited, 90), v.Exited[len(v.Exited)-1])
		}
		b.r.rawf("%s", line)
	}
	b.r.rawf("B1   runner init container cost (container exited p50, with − without): +%.2f s", p(initJob.Exited, 50)-p(bare.Exited, 50))
	return nil
}
