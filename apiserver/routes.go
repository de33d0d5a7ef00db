package apiserver

import (
	"context"
	"io"
	"net/http"
	"net/url"

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
	v1 := e.Group("/v1/functions/:functionId/executions", s.project)
	v1.GET("", requireScope(scopeExecutionRead), handle(s.listExecutions))
	v1.POST("", requireScope(scopeExecutionWrite), s.rateLimit, handle(s.createExecution))
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
	body        io.Reader
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
			body:        c.Request.Body,
		})
		switch {
		case aerr != nil:
			abort(c, aerr)
		case code == noAnswer:
		case body == nil:
			c.Status(code)
		default:
			c.JSON(code, body)
		}
	}
}
