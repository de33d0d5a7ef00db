package apiserver

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// newEngine serves Appwrite's executions routes. The checks a route makes
// before its handler run as middleware, in the order listed.
func (s *Server) newEngine() (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = false
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(s.opts.TrustedProxies); err != nil {
		return nil, err
	}
	e.Use(s.observe, s.recover, cors, readFormat)
	e.NoRoute(func(c *gin.Context) { abort(c, newError(errRouteNotFound)) })
	e.GET("/v1/health", health)
	v1 := e.Group("/v1/functions/:functionId/executions", refuseLegacy, s.project)
	v1.GET("", requireScope(scopeExecutionRead), handle(s.listExecutions))
	// Appwrite answers HEAD like GET; the server drops the body.
	v1.HEAD("", requireScope(scopeExecutionRead), handle(s.listExecutions))
	v1.POST("", requireScope(scopeExecutionWrite), s.rateLimit, s.protect, handle(s.createExecution))
	v1.GET("/:executionId", requireScope(scopeExecutionRead), handle(s.getExecution))
	v1.DELETE("/:executionId", since(v1_6), requireScope(scopeExecutionWrite), handle(s.deleteExecution))
	return e, nil
}

func health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"name": "http", "ping": 0, "status": "pass"})
}

// request is what a handler reads of an authenticated request to the
// executions routes.
type request struct {
	format      format
	project     string
	caller      caller
	functionID  string
	executionID string // empty on the routes without one
	query       url.Values
	// clientIP is the caller's address as the facade sees it through its
	// trusted proxies.
	clientIP string
	// body is read by create only, once it has checked that the caller
	// may run the function; size is its Content-Length, -1 when unknown.
	body io.Reader
	size int64
}

// noAnswer is the status of a handler that has nothing to answer: the
// client has gone.
const noAnswer = 0

// handler answers a request with a status and a JSON body (nil for none),
// or with an Appwrite error.
type handler func(ctx context.Context, r request) (int, any, *apiError)

// handle runs a handler after the project middleware has authenticated
// the caller, and writes its answer.
func handle(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		code, body, aerr := h(c.Request.Context(), request{
			format:      formatOf(c),
			project:     c.GetString(ctxProject),
			caller:      callerOf(c),
			functionID:  c.Param("functionId"),
			executionID: c.Param("executionId"),
			query:       c.Request.URL.Query(),
			clientIP:    c.ClientIP(),
			body:        c.Request.Body,
			size:        c.Request.ContentLength,
		})
		if h, ok := body.(withHeaders); ok {
			for k, v := range h.headers {
				c.Header(k, v)
			}
			body = h.body
		}
		switch {
		case aerr != nil:
			abort(c, aerr)
		case code == noAnswer:
		case body == nil:
			c.Status(code)
		default:
			writeJSON(c, code, body)
		}
	}
}

// withHeaders is an answer's body with headers of its own.
type withHeaders struct {
	body    any
	headers map[string]string
}

// writeJSON answers body as JSON; an object as it writes itself, which
// encoding/json would only read again to compact it.
func writeJSON(c *gin.Context, code int, body any) {
	o, ok := body.(object)
	if !ok {
		c.JSON(code, body)
		return
	}
	buf := jsonBuffers.Get().(*[]byte)
	raw, err := o.appendJSON((*buf)[:0])
	if err != nil {
		abort(c, internalError(err))
		return
	}
	// With its length known the answer is not chunked: one write
	// (syscall) less per answer, the final chunk's, which the B3 profile
	// showed in a third of the facade's CPU spent writing.
	c.Header("Content-Length", strconv.Itoa(len(raw)))
	c.Data(code, "application/json; charset=utf-8", raw)
	if cap(raw) <= maxPooledJSON {
		*buf = raw
		jsonBuffers.Put(buf)
	}
}

// jsonBuffers are reused once written (Data writes before it returns): a
// list's JSON is most of a request's garbage, and each garbage collection
// scans the whole cache.
var jsonBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledJSON keeps a rare huge answer from staying in the pool.
const maxPooledJSON = 256 << 10
