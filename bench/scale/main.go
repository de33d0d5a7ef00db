// Command scale runs kfn's benchmarks B1–B4 on the cluster in $KUBECONFIG
// (the local one-node cluster of `make cluster-up`, kfn installed by
// hack/deploy.sh) and prints one table of ratios against baselines
// measured in the same run, with the targets and whether they were met; it
// appends the run to bench/RESULTS.md.
//
//	B1 latency    sync create over REST vs a bare Job (Complete, container exit);
//	              a node-20 runtime function vs a bare Job of its image
//	B2 burst      200 async executions vs 200 bare Jobs; API writes per execution;
//	              the facade's async-create rate vs creating Executions directly
//	B3 reads      filtered list with limit 25 through the facade vs the
//	              kube-apiserver's list with limit=25, at N finished records
//	B4 footprint  RSS of the manager, the facade and the kube-apiserver with
//	              the records, stored bytes per record, pod restarts
//
// `make bench` builds, deploys and runs it; by hand:
//
//	KUBECONFIG=.cache/cluster/kubeconfig go run ./bench/scale --label dev
//
// Timings are reported, never asserted. Every loop is bounded in count and
// time; traffic goes only to loopback and the cluster's pod/service IPs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kfn-dev/kfn/bench/internal/kbench"
)

type config struct {
	only          map[string]bool
	runs          int
	node          bool
	burst         int
	burstClients  int
	rateClients   int
	rateDuration  time.Duration
	records       []int
	listClients   []int
	listDuration  time.Duration
	seedWorkers   int
	restartFacade bool
	facadePprof   string
	profileDir    string
	kfnNS         string
	managerDeploy string
	facadeDeploy  string
	facadeService string
	etcdURL       string
	results       string
	label         string
	command       string
	note          string
	keep          bool
}

func main() {
	c := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &report{}
	err := run(ctx, c, r)
	if err != nil {
		r.rawf("ERROR: %v", err)
	}
	r.print(os.Stdout)
	if c.results != "" {
		if werr := r.appendTo(c.results, c); werr != nil {
			fmt.Fprintln(os.Stderr, "scale: writing results:", werr)
		} else {
			fmt.Printf("\nappended to %s\n", c.results)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func parseFlags() config {
	var c config
	only := flag.String("only", "b1,b2,b3,b4", "benchmarks to run (B4 needs B3)")
	flag.IntVar(&c.runs, "runs", 10, "B1: runs of each variant")
	flag.BoolVar(&c.node, "node", true, "B1: also measure the node-20 runtime against a bare Job of its image (needs the image: make images)")
	flag.IntVar(&c.burst, "burst", 200, "B2: executions (and bare Jobs) created at once")
	flag.IntVar(&c.burstClients, "burst-clients", 32, "B2: concurrent clients creating the burst")
	flag.IntVar(&c.rateClients, "rate-clients", 16, "B2: clients of the async-create rate test")
	flag.DurationVar(&c.rateDuration, "rate-duration", 5*time.Second, "B2: length of the async-create rate test")
	records := flag.String("records", "1000,10000", "B3: record counts to measure at, ascending (B4 uses 10000, or the largest)")
	with100k := flag.Bool("with-100k", false, "B3: also measure at 100000 records (long seeding; raise the kfn memory limits)")
	listClients := flag.String("list-clients", "8,32", "B3: concurrent list clients")
	flag.DurationVar(&c.listDuration, "list-duration", 10*time.Second, "B3: length of each list run")
	flag.IntVar(&c.seedWorkers, "seed-workers", 32, "B3: concurrent writers seeding records")
	flag.BoolVar(&c.restartFacade, "restart-facade", false, "B3: restart the facade after seeding (its cache then starts from a full list)")
	flag.StringVar(&c.facadePprof, "facade-pprof-port", "", "B3: the port of the facade's --pprof-bind-address; with --profile-dir, CPU-profile it during each list run at the largest N")
	flag.StringVar(&c.profileDir, "profile-dir", "", "B3: folder for the facade's CPU profiles (see --facade-pprof-port)")
	flag.StringVar(&c.kfnNS, "kfn-namespace", "kfn-system", "namespace of the kfn installation")
	flag.StringVar(&c.managerDeploy, "manager-deployment", "kfn-manager", "the manager's Deployment")
	flag.StringVar(&c.facadeDeploy, "facade-deployment", "kfn-apiserver", "the facade's Deployment")
	flag.StringVar(&c.facadeService, "facade-service", "kfn-apiserver", "the facade's Service")
	flag.StringVar(&c.etcdURL, "etcd-url", "http://127.0.0.1:12379", "the local cluster's etcd (loopback; read-only use)")
	flag.StringVar(&c.results, "results", "bench/RESULTS.md", "append the run here (empty: do not)")
	flag.StringVar(&c.label, "label", "", "name of the run in RESULTS.md (e.g. before)")
	flag.StringVar(&c.command, "command", "", "the command to record (default: this program's command line)")
	flag.StringVar(&c.note, "note", "", "a line about what was deployed, for RESULTS.md")
	flag.BoolVar(&c.keep, "keep", false, "keep the bench namespaces (default: delete them at the end)")
	flag.Parse()

	c.only = map[string]bool{}
	for _, b := range strings.Split(*only, ",") {
		c.only[strings.ToLower(strings.TrimSpace(b))] = true
	}
	var err error
	if c.records, err = ints(*records); err != nil {
		fatal(err)
	}
	if *with100k {
		c.records = append(c.records, 100000)
	}
	sort.Ints(c.records)
	if c.listClients, err = ints(*listClients); err != nil {
		fatal(err)
	}
	if c.command == "" {
		c.command = "go run ./bench/scale " + strings.Join(os.Args[1:], " ")
	}
	return c
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(2)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is one run's shared state.
type bench struct {
	c      config
	env    *kbench.Env
	facade *kbench.Facade
	run    string // label value of this run's namespaces
	r      *report
	start  footprint // RSS at the start of the run (no records)
}

func run(ctx context.Context, c config, r *report) error {
	start := time.Now()
	r.started = start
	r.machine = kbench.Machine()
	env, err := kbench.NewEnv(5000, 5000)
	if err != nil {
		return err
	}
	b := &bench{c: c, env: env, run: fmt.Sprintf("scale-%d", start.Unix()), r: r}
	r.rawf("cluster: %s (kubeconfig %s)", env.Config.Host, env.Kubeconfig)
	r.rawf("load average at the start (the machine may be shared): %s", kbench.LoadAverage())

	// A run killed earlier may have left namespaces, or the manager at 0.
	if err := b.leftovers(ctx); err != nil {
		return err
	}
	if err := env.Scale(ctx, c.kfnNS, c.managerDeploy, 1, 3*time.Minute); err != nil {
		return fmt.Errorf("manager not ready: %w", err)
	}
	defer b.finish(ctx, start)

	b.facade, err = env.DiscoverFacade(ctx, c.kfnNS, c.facadeService, 64)
	if err != nil {
		return err
	}
	defer b.facade.Close()
	r.rawf("facade reached through %s", b.facade.Via)

	restartsBefore, err := b.kfnRestarts(ctx)
	if err != nil {
		return err
	}
	b.start, _ = b.footprint(ctx)
	r.rawf("start of run: %s", b.start)

	errs := b.steps(ctx)
	restartsAfter, err := b.kfnRestarts(ctx)
	if err == nil {
		b.restartRows(restartsBefore, restartsAfter)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return ctx.Err()
}

// steps runs the benchmarks asked for and returns their errors.
func (b *bench) steps(ctx context.Context) []string {
	var errs []string
	step := func(name string, f func(context.Context) error) {
		if !b.c.only[name] || ctx.Err() != nil {
			return
		}
		t := time.Now()
		fmt.Fprintf(os.Stderr, "== %s\n", strings.ToUpper(name))
		if err := f(ctx); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			b.r.rawf("%s FAILED: %v", strings.ToUpper(name), err)
			b.r.row(strings.ToUpper(name), "failed: "+short(err.Error()), "", "", noGoal)
		}
		b.r.rawf("%s took %.0f s", strings.ToUpper(name), time.Since(t).Seconds())
	}
	step("b1", b.b1)
	step("b2", b.b2)
	step("b3", b.b3) // B4 is measured inside B3, at the 10 000 records
	return errs
}

// finish leaves kfn running, whatever happened, and deletes the run's
// namespaces unless asked to keep them.
func (b *bench) finish(ctx context.Context, start time.Time) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*time.Minute)
	defer cancel()
	if err := b.env.Scale(bg, b.c.kfnNS, b.c.managerDeploy, 1, 3*time.Minute); err != nil {
		b.r.rawf("WARNING: manager not back to 1 ready replica: %v", err)
	}
	if !b.c.keep {
		t := time.Now()
		if err := b.env.DeleteNamespaces(bg, b.run, 3*time.Minute); err != nil {
			b.r.rawf("cleanup: bench namespaces not all gone: %v", err)
		} else {
			b.r.rawf("cleanup: bench namespaces deleted in %.0f s", time.Since(t).Seconds())
		}
	}
	b.r.rawf("total run time %.1f min; load average at the end: %s", time.Since(start).Minutes(), kbench.LoadAverage())
}

// leftovers deletes namespaces an earlier, killed run left (any run label).
func (b *bench) leftovers(ctx context.Context) error {
	out, err := b.env.Clientset.CoreV1().Namespaces().List(ctx, metav1ListOptions(kbench.LabelBench))
	if err != nil {
		return err
	}
	for _, ns := range out.Items {
		fmt.Fprintf(os.Stderr, "deleting leftover namespace %s\n", ns.Name)
		if err := b.env.DeleteNamespace(ctx, ns.Name, 3*time.Minute); err != nil {
			return fmt.Errorf("leftover namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// report collects the table and the raw numbers.
type report struct {
	started time.Time
	machine string
	rows    [][6]string
	raw     []string
}

// goal is a row's target and whether the run met it ("" when it has none).
type goal struct{ target, met string }

var noGoal = goal{"—", ""}

// atMost is the target "v ≤ limit", atLeast "v ≥ limit"; target is its text.
func atMost(v, limit float64, target string) goal  { return judged(v, v <= limit, target) }
func atLeast(v, limit float64, target string) goal { return judged(v, v >= limit, target) }

func judged(v float64, ok bool, target string) goal {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return goal{target, "n/a"}
	case ok:
		return goal{target, "yes"}
	}
	return goal{target, "no"}
}

// and is met when both are.
func (g goal) and(o goal) goal {
	met := "yes"
	switch {
	case g.met == "n/a" || o.met == "n/a":
		met = "n/a"
	case g.met != "yes" || o.met != "yes":
		met = "no"
	}
	return goal{g.target + "; " + o.target, met}
}

func (r *report) row(bench, kfn, base, ratio string, g goal) {
	r.rows = append(r.rows, [6]string{bench, kfn, base, ratio, g.target, g.met})
}

func (r *report) rawf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.raw = append(r.raw, line)
	fmt.Fprintln(os.Stderr, "  "+line)
}

func (r *report) table() string {
	var sb strings.Builder
	sb.WriteString("| bench | kfn | baseline (same run) | ratio | target | met? |\n|---|---|---|---|---|---|\n")
	for _, row := range r.rows {
		fmt.Fprintf(&sb, "| %s |\n", strings.Join(row[:], " | "))
	}
	return sb.String()
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", r.table())
	fmt.Fprintln(w, "raw numbers:")
	for _, l := range r.raw {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *report) appendTo(path string, c config) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	title := r.started.UTC().Format("2006-01-02 15:04 UTC")
	if c.label != "" {
		title += " — " + c.label
	}
	fmt.Fprintf(f, "\n## %s\n\n", title)
	fmt.Fprintf(f, "- machine: %s\n", r.machine)
	fmt.Fprintf(f, "- command: `%s`\n", c.command)
	if c.note != "" {
		fmt.Fprintf(f, "- kfn: %s\n", c.note)
	}
	fmt.Fprintf(f, "\n%s\n<details><summary>raw numbers</summary>\n\n```text\n", r.table())
	for _, l := range r.raw {
		fmt.Fprintln(f, l)
	}
	fmt.Fprint(f, "```\n\n</details>\n")
	return nil
}
