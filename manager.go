package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kfn-dev/kfn/apiserver"
	"github.com/kfn-dev/kfn/controllers"
	"github.com/kfn-dev/kfn/internal/kube"
)

// managerOptions are the operator's settings.
type managerOptions struct {
	metricsAddr string
	probeAddr   string
	pprofAddr   string
	leaderElect bool
	// lease is how leader election times its lease (leaderElectionTimings).
	lease          leaseTimings
	runnerImage    string
	runnerDelivery string
	runtimeCatalog string
	startupGrace   time.Duration
	maxRecordBytes int
	// maxRunningPerNamespace caps running Executions per namespace (0: none).
	maxRunningPerNamespace int
	// executionWorkers reconcile that many Executions at once.
	executionWorkers int
	// functionResources, tmpSizeLimit and runnerDirSizeLimit bound function
	// pods (controllers.FunctionDefaults).
	functionResources  string
	tmpSizeLimit       string
	runnerDirSizeLimit string
	retention          time.Duration
	// watchResources are the Kubernetes resources whose changes are events.
	watchResources    string
	eventReplayWindow time.Duration
	// facadeAccount and facadeProjectRole: the operator binds the role to
	// the facade's service account in each project namespace.
	facadeAccount     string
	facadeProjectRole string
	// apiserver serves the REST facade in the manager when its
	// BindAddress is set.
	apiserver apiserver.Options
	archive   archiveOptions
}

func runManager(args []string) int {
	o, zapOpts, err := parseManagerFlags(args)
	if err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	limitMemory()
	if err := startManager(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		return 1
	}
	return 0
}

// parseManagerFlags reads the manager's command line; the flag package has
// printed what is wrong when it fails.
func parseManagerFlags(args []string) (managerOptions, *zap.Options, error) {
	var o managerOptions
	fs := flag.NewFlagSet("kfn manager", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of the health and readiness probes")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "serve Go's pprof profiles (/debug/pprof/) on this address, for memory and CPU investigations (empty: off)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so only one replica reconciles")
	bindLeaseFlags(fs, &o.lease)
	fs.StringVar(&o.runnerImage, "runner-image", envOr("KFN_RUNNER_IMAGE", "kfn.dev/kfn:dev"), "image holding the kfn binary, copied into every function pod")
	fs.StringVar(&o.runnerDelivery, "runner-delivery", string(controllers.DeliverByInitContainer),
		"how the runner reaches function pods: init-container (any runtime) or image-volume (no extra container; containerd 2.1+, CRI-O 1.31+)")
	fs.StringVar(&o.runtimeCatalog, "runtime-catalog", "", "file listing the runtimes functions may name")
	fs.DurationVar(&o.startupGrace, "startup-grace", 30*time.Second, "time a function pod may take to start, added to the function timeout for the Job deadline")
	fs.DurationVar(&o.retention, "execution-retention", 336*time.Hour, "delete finished executions this long after they finish; Appwrite keeps them 14 days (0 keeps them; each Function's history limits cap them either way, unless they are archived: then this applies to the archive)")
	fs.IntVar(&o.maxRecordBytes, "max-record-bytes", 1<<20, "bytes of response, stdout and stderr kept together in an Execution status")
	o.maxRunningPerNamespace = 100
	fs.Func("max-running-per-namespace",
		"executions running at once in one namespace, all functions together; more wait, in creation order, for a slot (0: no cap; each Function's maxConcurrency applies too) (default 100)",
		func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("want 0 (no cap) or a positive number of executions, not %q", v)
			}
			o.maxRunningPerNamespace = n
			return nil
		})
	fs.IntVar(&o.executionWorkers, "execution-workers", 8,
		"executions reconciled at once: each waits on the API server (a Job created, a status written, a result read from the pod's log), so one worker would hold a burst to its round trips")
	bindFunctionDefaultsFlags(fs, &o)
	fs.StringVar(&o.watchResources, "watch-resources", "",
		"comma-separated group/version/resource list (core group: v1/configmaps) whose changes are events for functions, as <resource>.<namespace>.<name>.<action>; grant the operator get, list and watch on them")
	fs.DurationVar(&o.eventReplayWindow, "event-replay-window", controllers.DefaultEventReplayWindow,
		"after a restart, objects created this recently (and after the function) still count as created")
	fs.StringVar(&o.facadeAccount, "facade-service-account", "",
		"NAMESPACE/NAME of the REST facade's service account, granted --facade-project-role in every project namespace (empty: grant nothing)")
	fs.StringVar(&o.facadeProjectRole, "facade-project-role", "kfn-apiserver-project", "the ClusterRole holding the facade's rights in a project namespace")
	fs.StringVar(&o.apiserver.BindAddress, "apiserver-bind-address", "", "also serve the Appwrite REST facade on this address (empty: off)")
	apiserver.BindFlags(fs, "apiserver-", &o.apiserver)
	bindArchiveFlags(fs, &o.archive)
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	err := fs.Parse(args)
	noteExplicitArchiveFlags(fs, &o.archive)
	return o, zapOpts, err
}

// leaseTimings time leader election. A leader that cannot renew its lease
// for renewDeadline (the API server unreachable) stops leading and exits;
// a leader that crashed is replaced leaseDuration after its last renewal (one
// that stops gracefully hands the lease over at once).
type leaseTimings struct {
	leaseDuration, renewDeadline, retryPeriod time.Duration
}

// Defaults that ride out an API server restart (about 15 s on the local
// node: its graceful stop, etcd, its start) with room to spare, at the cost
// of a crashed leader's executions waiting up to 45 s for the next one;
// controller-runtime's 15 s/10 s/2 s made the leader exit, twice, on such a
// restart (TestFailoverAPIServerRestart).
const (
	defaultLeaseDuration = 45 * time.Second
	defaultRenewDeadline = 30 * time.Second
	defaultRetryPeriod   = 5 * time.Second
)

func bindLeaseFlags(fs *flag.FlagSet, l *leaseTimings) {
	fs.DurationVar(&l.leaseDuration, "leader-elect-lease-duration", defaultLeaseDuration,
		"how long after a leader's last renewal another replica may take over (how long executions wait when a leader crashes)")
	fs.DurationVar(&l.renewDeadline, "leader-elect-renew-deadline", defaultRenewDeadline,
		"how long the leader keeps trying to renew its lease before it stops leading and exits (the API server outage it rides out); below the lease duration")
	fs.DurationVar(&l.retryPeriod, "leader-elect-retry-period", defaultRetryPeriod,
		"how often replicas try to renew or take the lease")
}

// check refuses timings leader election cannot work with: client-go needs
// lease > renew deadline > 1.2 × retry period (its jitter) > 0.
func (l leaseTimings) check() error {
	switch {
	case l.retryPeriod <= 0:
		return fmt.Errorf("--leader-elect-retry-period must be positive, not %v", l.retryPeriod)
	case l.renewDeadline*10 <= l.retryPeriod*12:
		return fmt.Errorf("--leader-elect-renew-deadline (%v) must be over 1.2 × --leader-elect-retry-period (%v)", l.renewDeadline, l.retryPeriod)
	case l.leaseDuration <= l.renewDeadline:
		return fmt.Errorf("--leader-elect-lease-duration (%v) must be over --leader-elect-renew-deadline (%v): a leader must stop before another may start", l.leaseDuration, l.renewDeadline)
	}
	return nil
}

// bindFunctionDefaultsFlags binds the flags that bound function pods.
func bindFunctionDefaultsFlags(fs *flag.FlagSet, o *managerOptions) {
	fs.StringVar(&o.functionResources, "default-function-resources", controllers.DefaultFunctionResources,
		"resources of function containers, as YAML or JSON (requests and limits of cpu, memory, ephemeral-storage), for each resource their Function leaves unset ({} for none)")
	fs.StringVar(&o.tmpSizeLimit, "function-tmp-size-limit", controllers.DefaultTmpSizeLimit,
		"size limit of a function pod's /tmp; a pod writing more is evicted (0: unbounded)")
	fs.StringVar(&o.runnerDirSizeLimit, "function-runner-dir-size-limit", controllers.DefaultRunnerDirSizeLimit,
		"size limit of a function pod's runner directory /kfn: the runner binary (init-container delivery) and the request and response files (0: unbounded)")
}

// jobOptions turns the flags into what shapes every Job. runnerBytes is the
// size of the runner binary the init container copies into the pod.
func jobOptions(o managerOptions, runnerBytes int64) (controllers.JobOptions, error) {
	jobs := controllers.JobOptions{RunnerImage: o.runnerImage, RunnerDelivery: controllers.RunnerDelivery(o.runnerDelivery), StartupGrace: o.startupGrace}
	if jobs.RunnerDelivery != controllers.DeliverByInitContainer && jobs.RunnerDelivery != controllers.DeliverByImageVolume {
		return jobs, fmt.Errorf("--runner-delivery must be %s or %s, not %q", controllers.DeliverByInitContainer, controllers.DeliverByImageVolume, o.runnerDelivery)
	}
	var err error
	if jobs.Defaults.Resources, err = controllers.ParseResourceDefaults(o.functionResources); err != nil {
		return jobs, fmt.Errorf("--default-function-resources: %w", err)
	}
	if jobs.Defaults.TmpSizeLimit, err = controllers.ParseSizeLimit(o.tmpSizeLimit); err != nil {
		return jobs, fmt.Errorf("--function-tmp-size-limit: %w", err)
	}
	if jobs.Defaults.RunnerDirSizeLimit, err = controllers.ParseSizeLimit(o.runnerDirSizeLimit); err != nil {
		return jobs, fmt.Errorf("--function-runner-dir-size-limit: %w", err)
	}
	if jobs.RunnerDelivery != controllers.DeliverByInitContainer {
		runnerBytes = 0 // the image volume is mounted, not copied
	}
	if err := controllers.CheckRunnerDirSizeLimit(jobs.Defaults.RunnerDirSizeLimit, runnerBytes); err != nil {
		return jobs, fmt.Errorf("--function-runner-dir-size-limit: %w", err)
	}
	return jobs, nil
}

// executableBytes is the size of this binary: the runner image is, by
// default, the manager's own, so this is what the init container copies.
func executableBytes() (int64, error) {
	path, err := os.Executable()
	if err != nil {
		return 0, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func startManager(ctx context.Context, o managerOptions) error {
	runnerBytes, err := executableBytes()
	if err != nil {
		return fmt.Errorf("sizing the runner: %w", err)
	}
	jobs, err := jobOptions(o, runnerBytes)
	if err != nil {
		return err
	}
	catalog := controllers.RuntimeCatalog{}
	if o.runtimeCatalog != "" {
		if catalog, err = controllers.LoadRuntimeCatalog(o.runtimeCatalog); err != nil {
			return err
		}
	}
	watch, err := controllers.ParseWatchResources(o.watchResources)
	if err != nil {
		return fmt.Errorf("--watch-resources: %w", err)
	}
	if err := o.lease.check(); err != nil {
		return err
	}
	store, err := openArchive(ctx, o.archive)
	if err != nil {
		return err
	}
	if store != nil {
		defer store.Close()
	}
	o.apiserver.Archive = store
	mgr, err := newManager(ctx, o)
	if err != nil {
		return err
	}
	if err := setUpExecutionControllers(mgr, o, catalog, jobs, store != nil); err != nil {
		return err
	}
	if store != nil {
		if err := setUpArchive(mgr, o, store); err != nil {
			return err
		}
	}
	if err := setUpTriggerControllers(mgr, o, watch); err != nil {
		return err
	}
	if err := setUpProjectAccess(mgr, o); err != nil {
		return err
	}
	if err := setUpChecks(mgr, o); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// newManager makes the controller-runtime manager with kfn's cache and the
// Execution indexes the controllers read by.
func newManager(ctx context.Context, o managerOptions) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		LeaderElection:         o.leaderElect,
		LeaderElectionID:       "kfn-manager.functions.kfn.dev",
		// Hand the lease over on shutdown so a rollout's new pod need not
		// wait out the lease: the manager exits right after it stops.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.lease.leaseDuration,
		RenewDeadline:                 &o.lease.renewDeadline,
		RetryPeriod:                   &o.lease.retryPeriod,
		// Finished Executions are cached trimmed, so memory follows live
		// work rather than the stored history.
		Cache: kube.CacheOptions(kube.Operator),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := kube.IndexExecutionsByFunction(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := kube.IndexUnfinishedExecutions(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setUpExecutionControllers adds the controllers that run Executions and
// keep Functions (code, readiness, history unless it is archived).
func setUpExecutionControllers(mgr ctrl.Manager, o managerOptions, catalog controllers.RuntimeCatalog, jobs controllers.JobOptions, archived bool) error {
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	if err := (&controllers.ExecutionReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Scheme:         mgr.GetScheme(),
		Recorder:       mgr.GetEventRecorder("kfn-execution"),
		Clock:          clock.RealClock{},
		Logs:           controllers.PodLogReader{Pods: clientset.CoreV1()},
		Runtimes:       catalog,
		Jobs:           jobs,
		MaxRecordBytes: o.maxRecordBytes,

		MaxRunningPerNamespace: o.maxRunningPerNamespace,
		Workers:                o.executionWorkers,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&controllers.FunctionReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("kfn-function"),
		Runtimes:  catalog,
		Retention: o.retention,
		Clock:     clock.RealClock{},
		Archived:  archived,
	}).SetupWithManager(mgr)
}

// setUpTriggerControllers adds the controllers that create Executions from
// events and schedules.
func setUpTriggerControllers(mgr ctrl.Manager, o managerOptions, watch []schema.GroupVersionResource) error {
	if err := (&controllers.EventReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("kfn-events"),
		Clock:        clock.RealClock{},
		Resources:    watch,
		ReplayWindow: o.eventReplayWindow,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&controllers.ScheduleReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("kfn-schedule"),
		Clock:    clock.RealClock{},
	}).SetupWithManager(mgr)
}

// setUpProjectAccess grants a separately deployed facade its rights in the
// project namespaces.
func setUpProjectAccess(mgr ctrl.Manager, o managerOptions) error {
	if o.facadeAccount == "" {
		return nil
	}
	namespace, name, ok := strings.Cut(o.facadeAccount, "/")
	if !ok || namespace == "" || name == "" || o.facadeProjectRole == "" {
		return fmt.Errorf("--facade-service-account must be NAMESPACE/NAME, not %q, and --facade-project-role set", o.facadeAccount)
	}
	return (&controllers.ProjectAccessReconciler{
		Client: mgr.GetClient(),
		Role:   o.facadeProjectRole,
		Facade: types.NamespacedName{Namespace: namespace, Name: name},
	}).SetupWithManager(mgr)
}

// setUpChecks adds the probes, and the facade when it is served here: the
// manager is ready once the facade is.
func setUpChecks(mgr ctrl.Manager, o managerOptions) error {
	ready := healthz.Checker(healthz.Ping)
	if o.apiserver.BindAddress != "" {
		facade, err := apiserver.SetupWithManager(mgr, o.apiserver)
		if err != nil {
			return err
		}
		ready = facade.ReadyCheck
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("readyz", ready)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
