package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Keys of values middleware keeps in the gin context.
const (
	ctxFormat    = "kfn.format"
	ctxProject   = "kfn.project" // the namespace
	ctxProjectID = "kfn.projectId"
	ctxCaller    = "kfn.caller"
	ctxErrorType = "kfn.errorType"
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kfn_apiserver_requests_total",
		Help: "Requests to the REST facade by method, route, HTTP code and Appwrite error type.",
	}, []string{"method", "route", "code", "type"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kfn_apiserver_request_duration_seconds",
		Help:    "Time to answer a request to the REST facade, by method and route.",
		Buckets: []float64{0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "route"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(requestsTotal, requestDuration)
}

// corsHeaders are the request headers the Appwrite web SDK sends.
var corsHeaders = strings.Join([]string{
	"Origin", "Cookie", "Set-Cookie", "X-Requested-With", "Content-Type", "Access-Control-Allow-Origin",
	"Access-Control-Request-Headers", "Accept", "Content-Range", "Range",
	"X-Appwrite-Project", "X-Appwrite-Key", "X-Appwrite-JWT", "X-Appwrite-Locale", "X-Appwrite-Mode",
	"X-Appwrite-Response-Format", "X-Appwrite-Session", "X-Appwrite-ID", "X-Appwrite-Timestamp",
	"X-SDK-Name", "X-SDK-Platform", "X-SDK-Language", "X-SDK-Version", "X-SDK-Graphql",
	"X-Fallback-Cookies", "X-Forwarded-For", "X-Forwarded-User-Agent",
}, ", ")

// observe logs each request and counts it in the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	code := c.Writer.Status()
	typ := c.GetString(ctxErrorType)
	elapsed := time.Since(start)
	requestsTotal.WithLabelValues(c.Request.Method, route, strconv.Itoa(code), typ).Inc()
	requestDuration.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())
	kv := []any{"method", c.Request.Method, "route", route, "path", c.Request.URL.Path, "status", code,
		"duration", elapsed.String(), "ip", c.ClientIP(), "project", c.GetString(ctxProject), "format", formatOf(c).name}
	if typ != "" {
		kv = append(kv, "type", typ)
	}
	if v, ok := c.Get(ctxCaller); ok {
		who := v.(caller)
		switch who.kind {
		case apiKey:
			kv = append(kv, "apiKey", who.keyName)
		case user:
			kv = append(kv, "userId", who.userID)
		}
	}
	for _, err := range c.Errors {
		kv = append(kv, "error", err.Error())
	}
	if code >= 500 {
		s.log.Info("request failed", kv...)
	} else {
		s.log.V(1).Info("request", kv...)
	}
}

// recover answers a panic with general_unknown and logs it: no panic
// reaches a client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error(fmt.Errorf("%v", r), "panic while serving a request", "path", c.Request.URL.Path)
			_ = c.Error(fmt.Errorf("panic: %v", r))
			if !c.Writer.Written() {
				abort(c, newError(errUnknown))
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

// cors lets the web SDK call the facade from a browser. A preflight names
// no project, so, as Appwrite, it allows the request's origin; an actual
// request gets the CORS headers here when its origin is one Appwrite
// always allows, else from checkOrigin once its project is known.
func cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	c.Writer.Header().Add("Vary", "Origin")
	if c.Request.Method == http.MethodOptions {
		setCORS(c, origin)
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	if u, err := url.Parse(origin); err == nil && alwaysAllowedHost(strings.ToLower(u.Hostname()), c.Request) {
		setCORS(c, origin)
	}
	c.Next()
}

// setCORS allows a browser origin to read the answer, with credentials.
func setCORS(c *gin.Context, origin string) {
	if origin == "" {
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Expose-Headers", "X-Fallback-Cookies, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Appwrite-Execution-Id")
}

func readFormat(c *gin.Context) {
	c.Set(ctxFormat, parseFormat(c.GetHeader("X-Appwrite-Response-Format")))
	c.Next()
}

// refuseLegacy answers a 0.x response format with an explicit error: its
// models ($read/$write, unix times, …) are not implemented, and answering
// the 1.0 shape would confuse its SDK.
func refuseLegacy(c *gin.Context) {
	if h := c.GetHeader("X-Appwrite-Response-Format"); formatOf(c).legacy {
		abort(c, newErrorf(errArgumentInvalid,
			"Response format %q is not supported: this server speaks Appwrite response formats %s to %s. Upgrade the SDK to a version for Appwrite 1.0 or newer.",
			h, v1_0, latest))
	}
}

func formatOf(c *gin.Context) format {
	if v, ok := c.Get(ctxFormat); ok {
		return v.(format)
	}
	return parseFormat("")
}

func callerOf(c *gin.Context) caller { return c.MustGet(ctxCaller).(caller) }

// project resolves X-Appwrite-Project to an opted-in namespace (by its
// Appwrite project ID, see resolveProject) and authenticates the caller in
// it.
func (s *Server) project(c *gin.Context) {
	id := c.GetHeader("X-Appwrite-Project")
	if id == "" {
		id = c.Query("project")
	}
	if id == "" {
		abort(c, newError(errProjectUnknown))
		return
	}
	ns, aerr := s.resolveProject(c, id)
	if aerr != nil {
		abort(c, aerr)
		return
	}
	c.Set(ctxProject, ns.Name)
	c.Set(ctxProjectID, id)
	if aerr := checkOrigin(c, ns); aerr != nil {
		abort(c, aerr)
		return
	}
	who, aerr := s.authenticate(c, ns.Name, c.GetHeader("X-Appwrite-Key"), c.GetHeader("X-Appwrite-JWT"))
	if aerr != nil {
		abort(c, aerr)
		return
	}
	c.Set(ctxCaller, who)
	c.Next()
}

// since hides a route from formats older than v, as Appwrite versions
// without it do.
func since(v version) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !formatOf(c).atLeast(v) {
			abort(c, newError(errRouteNotFound))
		}
	}
}

// requireScope answers general_unauthorized_scope unless the caller has scope.
func requireScope(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		who := callerOf(c)
		if !who.has(scope) {
			role := map[callerKind]string{guest: "guests", user: "users", apiKey: "applications"}[who.kind]
			abort(c, newErrorf(errUnauthorizedScope, "%s (role: %s) missing scope (%s)", callerName(c, who), role, scope))
		}
	}
}

// callerName is how Appwrite names the caller in a scope error: the user's
// email, "User" by default (kfn keeps no emails), and for an API key its
// service user app.<project>@service.<hostname>.
func callerName(c *gin.Context, who caller) string {
	if who.kind != apiKey {
		return "User"
	}
	host := c.Request.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return "app." + c.GetString(ctxProjectID) + "@service." + host
}
