package apiserver

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kfn-dev/kfn/internal/kube"
)

// BindFlags registers the facade's options on a flag set; prefix is
// prepended to each flag name ("" for `kfn apiserver`, "apiserver-" for
// `kfn manager`).
func BindFlags(fs *flag.FlagSet, prefix string, o *Options) {
	d := DefaultOptions()
	fs.DurationVar(&o.SyncTimeout, prefix+"sync-timeout", d.SyncTimeout, "longest wait for a synchronous execution (response formats 1.4+)")
	fs.DurationVar(&o.SyncGrace, prefix+"sync-grace", d.SyncGrace, "added to the function timeout to bound a synchronous execution for response formats before 1.4")
	fs.IntVar(&o.RateLimit, prefix+"rate-limit", d.RateLimit, "executions one IP+user may create per period with response formats before 1.4 (0 disables)")
	fs.DurationVar(&o.RatePeriod, prefix+"rate-period", d.RatePeriod, "period of the rate limit")
	fs.Func(prefix+"trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.TrustedProxies = append(o.TrustedProxies, p)
			}
		}
		return nil
	})
}

// Main is `kfn apiserver`: the facade on its own, reading through an
// informer cache of its own.
func Main(args []string) int {
	o := DefaultOptions()
	var metricsAddr, probeAddr string
	fs := flag.NewFlagSet("kfn apiserver", flag.ContinueOnError)
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the Appwrite REST API is served on")
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the health and readiness probes")
	BindFlags(fs, "", &o)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctx := ctrl.SetupSignalHandler()
	if err := run(ctx, o, metricsAddr, probeAddr); err != nil {
		ctrl.Log.Error(err, "apiserver stopped")
		return 1
	}
	return 0
}

func run(ctx context.Context, o Options, metricsAddr, probeAddr string) error {
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		Cache:                  cache.Options{ByObject: kube.ManagedObjectsOnly()},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := kube.IndexExecutionsByFunction(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	s, err := SetupWithManager(mgr, o)
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", s.ReadyCheck); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// ReadyCheck passes once the facade serves.
func (s *Server) ReadyCheck(*http.Request) error {
	select {
	case <-s.ready:
		return nil
	default:
		return fmt.Errorf("the REST facade is not serving yet")
	}
}

// JWTMain is `kfn jwt`: mint a user JWT the facade accepts, signed with a
// key from a file or from a project's kfn-jwt Secret.
func JWTMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfn jwt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key-file", "", "file holding the signing key")
	project := fs.String("project", "", "read the key from the "+JWTSecretName+" Secret of this project namespace (uses the kubeconfig)")
	userID := fs.String("user", "", "user ID (the userId claim)")
	sessionID := fs.String("session", "", "session ID (the sessionId claim); random if empty")
	ttl := fs.Duration("ttl", JWTMaxAge, "lifetime of the token, at most 15m")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *userID == "" || (*keyFile == "") == (*project == "") {
		fmt.Fprintln(stderr, "usage: kfn jwt --user ID (--key-file FILE | --project NAMESPACE) [--session ID] [--ttl 15m]")
		return 2
	}
	if !validUID(*userID) {
		fmt.Fprintf(stderr, "kfn jwt: %q is not a valid user ID (up to 36 of a-z, A-Z, 0-9, '.', '-', '_')\n", *userID)
		return 2
	}
	var key []byte
	var err error
	if *keyFile != "" {
		key, err = os.ReadFile(*keyFile)
	} else {
		key, err = readJWTKey(*project)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kfn jwt:", err)
		return 1
	}
	if *sessionID == "" {
		*sessionID = NewID()
	}
	token, err := MintJWT(key, *userID, *sessionID, time.Now(), *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "kfn jwt:", err)
		return 1
	}
	fmt.Fprintln(stdout, token)
	return 0
}

func readJWTKey(namespace string) ([]byte, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: JWTSecretName}, secret); err != nil {
		return nil, err
	}
	key := secret.Data[JWTSecretKey]
	if len(key) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no %q key", namespace, JWTSecretName, JWTSecretKey)
	}
	return key, nil
}
