// Command latency measures what kfn adds on top of Kubernetes: it runs the
// same no-op workload as a bare Job, as a bare Job with kfn's runner init
// container, as a kfn Execution, and as a synchronous create through the
// REST facade (when it is installed), and a no-op Node.js function of the
// node-20 runtime against a bare Job of its image, one at a time and
// interleaved, on the cluster in $KUBECONFIG, and prints each one's latency
// and the ratios.
// `make bench` runs it as B1 (bench/scale).
//
//	go run ./bench/latency --runs 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kfn-dev/kfn/bench/internal/kbench"
	"github.com/kfn-dev/kfn/bench/internal/latency"
)

func main() {
	runs := flag.Int("runs", 10, "runs of each variant")
	timeout := flag.Duration("timeout", 2*time.Minute, "longest wait for one run")
	rest := flag.Bool("rest", true, "also measure a synchronous create through the REST facade (skipped if it is not installed)")
	kfnNS := flag.String("kfn-namespace", "kfn-system", "namespace of the kfn installation")
	node := flag.Bool("node", true, "also measure the node-20 runtime (needs its image: make images)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, latency.Options{Runs: *runs, Timeout: *timeout, Node: *node}, *rest, *kfnNS); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts latency.Options, rest bool, kfnNS string) error {
	env, err := kbench.NewEnv(1000, 1000)
	if err != nil {
		return err
	}
	opts.Run = fmt.Sprintf("latency-%d", time.Now().Unix())
	if rest {
		f, err := env.DiscoverFacade(ctx, kfnNS, "kfn-apiserver", 4)
		if err != nil {
			fmt.Fprintln(os.Stderr, "latency: no REST facade, skipping its variant:", err)
		} else {
			defer f.Close()
			fmt.Println("facade:", f.Via)
			opts.Facade = f
		}
	}
	res, err := latency.Run(ctx, env, opts)
	if err != nil {
		return err
	}
	latency.Print(os.Stdout, res)
	return nil
}
