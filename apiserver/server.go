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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
	"github.com/kfn-dev/kfn/internal/execindex"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Cluster-wide, the facade only reads Functions, Executions and project
// namespaces. What it does in a project namespace (read the credential
// Secrets by name, create and delete Executions, create the Secrets of a
// request) is granted there only, by the operator (internal/projectaccess).
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=functions,verbs=get;list;watch
// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// maxFunctionTimeout is the largest Function timeout (the CRD's maximum).
const maxFunctionTimeout = 900 * time.Second

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
	// RatePeriod with formats before 1.4 (Appwrite 1.0's limit, with its
	// X-RateLimit-* headers); 0 disables the limit.
	RateLimit  int
	RatePeriod time.Duration
	// IPLimit, UserLimit and KeyLimit protect the facade and the cluster in
	// every response format: how many executions one client IP (guests and
	// users), one user, or one API key may create per LimitPeriod (a
	// minute); 0 disables each.
	IPLimit, UserLimit, KeyLimit int
	LimitPeriod                  time.Duration
	// MaxBodyMemory bounds the bytes of large create request bodies held
	// at once (by their Content-Length; a body of unknown length counts as
	// the largest allowed, 11 MiB, and so does the least budget; bodies up
	// to smallBody are not counted); a request that does not fit is
	// answered 429 before its body is read.
	MaxBodyMemory int64
	// MaxSyncWaiters bounds the synchronous creates waiting at once for
	// their executions; one more is answered 429 before anything is
	// created. A wait holds little memory, but more waiters than the
	// cluster runs executions in a sync timeout only wait to time out.
	MaxSyncWaiters int
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// CredentialsTTL is how long a project's API keys and JWT keys, once
	// read, are used before they are read again: how long a revoked key
	// still works.
	CredentialsTTL time.Duration
	// TrustedProxies may set X-Forwarded-For; none by default.
	TrustedProxies []string
	// Archive, when set, holds the records that are no longer objects
	// (docs/archive.md): a get of an execution not among the objects reads
	// it there.
	Archive *archive.Store
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
		IPLimit:     600,
		UserLimit:   600,
		LimitPeriod: time.Minute,
		// Four 11 MiB bodies: a 10 MiB create costs about twice its body
		// while it is read and turned into Secrets.
		MaxBodyMemory:  4 * maxRequestBody,
		MaxSyncWaiters: defaultMaxSyncWaiters,
		ReadTimeout:    60 * time.Second,
		CredentialsTTL: 5 * time.Second,
	}
}

// withDefaults replaces the durations and the body budget left unset (or
// invalid) with the defaults.
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
	if o.LimitPeriod <= 0 {
		o.LimitPeriod = d.LimitPeriod
	}
	if o.MaxBodyMemory <= 0 {
		o.MaxBodyMemory = d.MaxBodyMemory
	}
	// One largest body always fits.
	o.MaxBodyMemory = max(o.MaxBodyMemory, maxRequestBody)
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.ReadTimeout
	}
	if o.CredentialsTTL < 0 {
		o.CredentialsTTL = 0
	}
	if o.MaxSyncWaiters <= 0 {
		o.MaxSyncWaiters = d.MaxSyncWaiters
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
	// writer creates and deletes Executions, and creates their request
	// Secrets.
	writer client.Client
	// projects reads the project namespaces, from a cache of its own
	// holding only those; credentials their API keys and JWT keys.
	projects    client.Reader
	credentials *credentials
	// index holds the Executions by function in list order; it and the
	// waiters are fed by the Execution informer of cache.
	index   *execindex.Index
	cache   cache.Cache
	waiters *waiters
	// informers are started and synced by Start before it serves.
	informers []informerOf
	limits    limits
	// rendered keeps the JSON of finished records lists show.
	rendered renderedRecords
	// bodies bounds the create request bodies held in memory at once.
	bodies *budget
	// syncWaiters bounds the synchronous creates waiting at once.
	syncWaiters *budget
	engine      *gin.Engine
	log         logr.Logger
	ready       chan struct{}
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
	projects, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}: {Label: labels.SelectorFromSet(labels.Set{kube.LabelProject: "true"})},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the project cache: %w", err)
	}
	if err := indexIDs(context.Background(), projects, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	s := newServer(opts, mgr.GetCache(), mgr.GetAPIReader(), mgr.GetClient(), projects)
	s.cache = mgr.GetCache()
	s.informers = []informerOf{{s.cache, &fnv1.Function{}}, {projects, &corev1.Namespace{}}}
	if s.engine, err = s.newEngine(); err != nil {
		return nil, err
	}
	for _, r := range []manager.Runnable{projects, s} {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newServer is a facade without its engine and informers, on readers of
// any kind (tests and benchmarks use fakes). Credentials are read live.
func newServer(opts Options, reader, live client.Reader, writer client.Client, projects client.Reader) *Server {
	s := &Server{
		opts:        opts,
		reader:      reader,
		live:        live,
		writer:      writer,
		projects:    projects,
		credentials: newCredentials(live, opts.CredentialsTTL),
		index:       execindex.New(),
		waiters:     newWaiters(),
		log:         opts.Logger,
		ready:       make(chan struct{}),
		limits:      newLimits(opts),
		bodies:      newBudget(opts.MaxBodyMemory),
		rendered:    newRenderedRecords(),
		syncWaiters: newBudget(int64(opts.MaxSyncWaiters)),
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
	srv := s.httpServer()
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

// httpServer bounds what one connection may hold: headers, the time to
// send a request (a 10 MiB body on a slow link included), and the time to
// answer it, which for a synchronous execution is the longest wait its
// format allows (Appwrite 1.0–1.3: the function timeout, up to 900 s, plus
// the grace).
func (s *Server) httpServer() *http.Server {
	wait := max(s.opts.SyncTimeout, maxFunctionTimeout+s.opts.SyncGrace)
	return &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.ReadTimeout + wait + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Ready is closed once the facade serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }
