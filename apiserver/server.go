// Package apiserver is kfn's REST facade: the Appwrite Functions
// executions API (list, create, get and delete executions) served from
// Function and Execution objects, so the official Appwrite SDKs work
// against any cluster running the kfn operator.
//
// The facade is stateless. It reads Functions and Executions from the
// controller-runtime informer cache (a function's executions through the
// spec.functionName field index), creates Executions, and waits for a
// synchronous execution to finish on informer events.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-logr/logr"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// The facade reads Functions and Executions, creates and deletes
// Executions and the Secrets holding callers' JWTs, and reads project
// namespaces, API key Secrets and JWT signing keys.
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;delete

// Options configure the facade.
type Options struct {
	// BindAddress is where the facade listens, e.g. ":8090".
	BindAddress string
	// Listener, when set, is used instead of BindAddress (tests).
	Listener net.Listener
	// SyncTimeout bounds a synchronous execution for formats 1.4+
	// (Appwrite: 30 s).
	SyncTimeout time.Duration
	// SyncGrace is added to the function timeout to bound a synchronous
	// execution for formats before 1.4, to cover the pod's start.
	SyncGrace time.Duration
	// CacheWait bounds how long create waits for the informer cache to
	// see the new Execution, so a read that follows sees it too.
	CacheWait time.Duration
	// RateLimit is how many executions one IP+user may create per
	// RatePeriod with formats before 1.4; 0 disables the limit.
	RateLimit  int
	RatePeriod time.Duration
	// TrustedProxies may set X-Forwarded-For; none by default.
	TrustedProxies []string
	// Logger logs requests.
	Logger logr.Logger
}

// DefaultOptions are Appwrite's limits.
func DefaultOptions() Options {
	return Options{
		BindAddress: ":8090",
		SyncTimeout: 30 * time.Second,
		SyncGrace:   30 * time.Second,
		CacheWait:   5 * time.Second,
		RateLimit:   60,
		RatePeriod:  time.Minute,
	}
}

// withDefaults replaces the durations left unset (or invalid) with the defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = d.SyncTimeout
	}
	if o.SyncGrace < 0 {
		o.SyncGrace = 0
	}
	if o.CacheWait <= 0 {
		o.CacheWait = d.CacheWait
	}
	if o.RatePeriod <= 0 {
		o.RatePeriod = d.RatePeriod
	}
	return o
}

// Server is the REST facade.
type Server struct {
	opts Options
	// reader reads Functions and Executions from the manager's cache.
	reader client.Reader
	// writer creates and deletes Executions and JWT Secrets.
	writer client.Client
	// creds holds project namespaces and API key Secrets, jwtKeys the
	// projects' JWT signing Secrets: caches of their own, so only those
	// Secrets are ever held in memory.
	creds   cache.Cache
	jwtKeys cache.Cache
	// executions is the Execution informer, watched for sync waits.
	executions cache.Cache
	waiters    *waiters
	limiter    *limiter.Limiter
	engine     *gin.Engine
	log        logr.Logger
	ready      chan struct{}
}

// SetupWithManager adds the facade, and the caches it needs, to a manager
// whose cache has the Execution field index of
// kube.IndexExecutionsByFunction.
func SetupWithManager(mgr ctrl.Manager, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if opts.Logger.GetSink() == nil {
		opts.Logger = mgr.GetLogger().WithName("apiserver")
	}
	projectSel := labels.SelectorFromSet(labels.Set{LabelProject: "true"})
	keySel := labels.SelectorFromSet(labels.Set{LabelAPIKey: "true"})
	creds, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}: {Label: projectSel},
			&corev1.Secret{}:    {Label: keySel},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the credentials cache: %w", err)
	}
	jwtKeys, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", JWTSecretName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the JWT key cache: %w", err)
	}
	s := &Server{
		opts:       opts,
		reader:     mgr.GetCache(),
		writer:     mgr.GetClient(),
		creds:      creds,
		jwtKeys:    jwtKeys,
		executions: mgr.GetCache(),
		waiters:    newWaiters(),
		log:        opts.Logger,
		ready:      make(chan struct{}),
	}
	if opts.RateLimit > 0 {
		s.limiter = limiter.New(memory.NewStore(), limiter.Rate{Period: opts.RatePeriod, Limit: int64(opts.RateLimit)})
	}
	if s.engine, err = s.newEngine(); err != nil {
		return nil, err
	}
	for _, r := range []manager.Runnable{creds, jwtKeys, s} {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handler is the facade's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Start watches Executions for sync waiters, waits for the caches and
// serves until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	inf, err := s.executions.GetInformer(ctx, &fnv1.Execution{})
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(s.waiters.handler()); err != nil {
		return err
	}
	// Informers the handlers read from, started before serving.
	for _, obj := range []struct {
		c   cache.Cache
		obj client.Object
	}{{s.reader.(cache.Cache), &fnv1.Function{}}, {s.creds, &corev1.Namespace{}}, {s.creds, &corev1.Secret{}}, {s.jwtKeys, &corev1.Secret{}}} {
		if _, err := obj.c.GetInformer(ctx, obj.obj); err != nil {
			return err
		}
	}
	for _, c := range []cache.Cache{s.creds, s.jwtKeys, s.executions} {
		if !c.WaitForCacheSync(ctx) {
			return errors.New("the facade's caches did not sync")
		}
	}
	ln := s.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.opts.BindAddress); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: s.engine, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.log.Info("serving the Appwrite executions API", "address", ln.Addr().String())
	close(s.ready)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Ready is closed once the facade serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }
