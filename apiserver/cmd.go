package apiserver

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
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
	fs.IntVar(&o.IPLimit, prefix+"ip-rate-limit", d.IPLimit, "executions one client IP (guests and users) may create per minute, in every response format (0 disables)")
	fs.IntVar(&o.UserLimit, prefix+"user-rate-limit", d.UserLimit, "executions one user may create per minute, in every response format (0 disables)")
	fs.IntVar(&o.KeyLimit, prefix+"key-rate-limit", d.KeyLimit, "executions one API key may create per minute (0: unlimited, as in Appwrite)")
	o.MaxBodyMemory = d.MaxBodyMemory
	fs.Func(prefix+"max-body-memory", "bytes of create request bodies over 128Ki held at once (at least 11Mi, one largest body); a create that does not fit is answered 429 unread (default 44Mi)", func(v string) error {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return err
		}
		o.MaxBodyMemory = q.Value()
		return nil
	})
	fs.IntVar(&o.MaxSyncWaiters, prefix+"max-sync-waiters", d.MaxSyncWaiters, "synchronous creates waiting at once for their executions; one more is answered 429 before anything is created")
	fs.DurationVar(&o.ReadTimeout, prefix+"read-timeout", d.ReadTimeout, "longest time to receive one request, body included")
	fs.DurationVar(&o.CredentialsTTL, prefix+"credentials-ttl", d.CredentialsTTL, "how long a project's API keys and JWT keys are used once read: how long a revoked key still works")
	fs.Func(prefix+"trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.TrustedProxies = append(o.TrustedProxies, p)
			}
		}
		return nil
	})
}

// Addresses are where `kfn apiserver` serves besides the API; "0" or ""
// turns one off (pprof is off unless set).
type Addresses struct {
	Metrics, Probe, Pprof string
}

// Run is the facade on its own (`kfn apiserver`), reading through an
// informer cache of its own, until ctx is done.
func Run(ctx context.Context, o Options, addrs Addresses) error {
	mgr, err := newManager(ctrl.GetConfigOrDie(), addrs)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
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

// newManager is the facade's own manager. Its cache keeps no request
// bodies and only small outputs of finished Executions, so the facade's
// memory follows live work, not the stored history; the readers fetch the
// rest from the API server.
func newManager(cfg *rest.Config, addrs Addresses) (ctrl.Manager, error) {
	return ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: addrs.Metrics},
		HealthProbeBindAddress: addrs.Probe,
		PprofBindAddress:       addrs.Pprof,
		Cache:                  kube.CacheOptions(kube.Facade),
	})
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

// ReadJWTKey reads a project's JWT signing key from its JWTSecretName Secret.
func ReadJWTKey(ctx context.Context, c client.Reader, namespace string) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: JWTSecretName}, secret); err != nil {
		return nil, err
	}
	key := secret.Data[JWTSecretKey]
	if len(key) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no %q key", namespace, JWTSecretName, JWTSecretKey)
	}
	return key, nil
}
