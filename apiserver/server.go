// Package apiserver is kfn's REST facade: the Appwrite Functions
// executions API (list, create, get and delete executions) served from
// Function and Execution objects, so the official Appwrite SDKs work
// against any cluster running the kfn operator.
//
// The facade is stateless. It reads Functions from the controller-runtime
// informer cache and Executions from an index the Execution informer feeds
// (internal/execindex: by function, in list order, without copies), reads
// around the cache the outputs the cache leaves out of large finished
// records, creates Executions, and waits for a synchronous execution to
// finish on informer events.
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
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/execindex"
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
	// reader reads Functions from the manager's cache.
	reader client.Reader
	// live reads around the cache: the outputs a stripped cached
	// Execution lacks (kube.IsStripped).
	live client.Reader
	// writer creates and deletes Executions and JWT Secrets.
	writer client.Client
	// creds reads project namespaces and API key Secrets, jwtKeys the
	// projects' JWT signing Secrets: caches of their own, so only those
	// Secrets are ever held in memory.
	creds   client.Reader
	jwtKeys client.Reader
	// index holds the Executions by function in list order; it and the
	// waiters are fed by the Execution informer of cache.
	index   *execindex.Index
	cache   cache.Cache
	waiters *waiters
	// informers are started and synced by Start before it serves.
	informers []informerOf
	limiter   *limiter.Limiter
	engine    *gin.Engine
	log       logr.Logger
	ready     chan struct{}
}

// informerOf is one informer the handlers read from.
type informerOf struct {
	cache cache.Cache
	obj   client.Object
}

// SetupWithManager adds the facade, and the caches it needs, to a manager.
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
	s := newServer(opts, mgr.GetCache(), mgr.GetAPIReader(), mgr.GetClient(), creds, jwtKeys)
	s.cache = mgr.GetCache()
	s.informers = []informerOf{{s.cache, &fnv1.Function{}}, {creds, &corev1.Namespace{}}, {creds, &corev1.Secret{}}, {jwtKeys, &corev1.Secret{}}}
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

// newServer is a facade without its engine and informers, on readers of
// any kind (tests and benchmarks use fakes).
func newServer(opts Options, reader, live client.Reader, writer client.Client, creds, jwtKeys client.Reader) *Server {
	s := &Server{
		opts:    opts,
		reader:  reader,
		live:    live,
		writer:  writer,
		creds:   creds,
		jwtKeys: jwtKeys,
		index:   execindex.New(),
		waiters: newWaiters(),
		log:     opts.Logger,
		ready:   make(chan struct{}),
	}
	if opts.RateLimit > 0 {
		s.limiter = limiter.New(memory.NewStore(), limiter.Rate{Period: opts.RatePeriod, Limit: int64(opts.RateLimit)})
	}
	return s
}

// Handler is the facade's HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Start indexes Executions (and wakes sync waiters on their events),
// waits for every informer the handlers read, and serves until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	inf, err := s.cache.GetInformer(ctx, &fnv1.Execution{})
	if err != nil {
		return err
	}
	reg, err := inf.AddEventHandler(executionEvents{s.index, s.waiters})
	if err != nil {
		return err
	}
	// The index is complete only once its handler has seen the initial
	// list, not when the informer's store has.
	synced := []toolscache.InformerSynced{reg.HasSynced}
	for _, i := range s.informers {
		inf, err := i.cache.GetInformer(ctx, i.obj)
		if err != nil {
			return err
		}
		synced = append(synced, inf.HasSynced)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return errors.New("the facade's caches did not sync")
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
