package apiserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Request limits of create execution.
const (
	maxData        = 8192     // 1.0–1.3 data, in characters
	maxBody        = 10 << 20 // Appwrite 1.6+; over fnv1.MaxBodyBytes it travels in body Secrets
	maxPath        = 2048
	maxHeaders     = 100
	maxHeadersSize = 16384
	maxRequestBody = 11 << 20 // a little above Appwrite's 10 MiB body limit
)

// NewID returns an Appwrite-style unique ID: 13 hex digits of the current
// time (seconds and microseconds, like PHP's uniqid) and 7 random ones.
// The 20 lowercase hex characters are a valid Kubernetes name, and IDs
// made later sort later.
func NewID() string {
	now := time.Now()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%08x%05x%s", now.Unix(), now.Nanosecond()/1000, hex.EncodeToString(rnd[:])[:7])
}

func (s *Server) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"name": "http", "ping": 0, "status": "pass"})
}

// function returns the project's Function, answering function_not_found
// when it is missing, or disabled and enabled is required.
func (s *Server) function(c *gin.Context, mustBeEnabled bool) (*fnv1.Function, bool) {
	fn := &fnv1.Function{}
	key := types.NamespacedName{Namespace: c.GetString(ctxProject), Name: c.Param("functionId")}
	if err := s.reader.Get(c, key, fn); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			abort(c, newError(errFunctionNotFound))
			return nil, false
		}
		internalError(c, err)
		return nil, false
	}
	if mustBeEnabled && !fn.IsEnabled() {
		abort(c, newError(errFunctionNotFound))
		return nil, false
	}
	return fn, true
}

// execution returns an execution of the request's function (which must
// exist) that the caller may see.
func (s *Server) execution(c *gin.Context) (*fnv1.Execution, bool) {
	if _, ok := s.function(c, false); !ok {
		return nil, false
	}
	e := &fnv1.Execution{}
	key := types.NamespacedName{Namespace: c.GetString(ctxProject), Name: c.Param("executionId")}
	err := s.reader.Get(c, key, e)
	if err != nil && !apierrors.IsNotFound(err) {
		internalError(c, err)
		return nil, false
	}
	if err != nil || e.Spec.FunctionName != c.Param("functionId") || !callerOf(c).canSee(e.Spec.UserID) {
		abort(c, newError(errExecutionNotFound))
		return nil, false
	}
	return e, true
}

func (s *Server) listExecutions(c *gin.Context) {
	if !requireScope(c, scopeExecutionRead) {
		return
	}
	f := formatOf(c)
	plan, aerr := planList(f, c.Request.URL.Query())
	if aerr != nil {
		abort(c, aerr)
		return
	}
	if _, ok := s.function(c, false); !ok {
		return
	}
	var list fnv1.ExecutionList
	if err := s.reader.List(c, &list, client.InNamespace(c.GetString(ctxProject)),
		client.MatchingFields{kube.ExecutionFunctionField: c.Param("functionId")}); err != nil {
		internalError(c, err)
		return
	}
	who := callerOf(c)
	visible := make([]record, 0, len(list.Items))
	for i := range list.Items {
		if who.canSee(list.Items[i].Spec.UserID) {
			visible = append(visible, toRecord(&list.Items[i], who.kind == apiKey))
		}
	}
	total, page, aerr := plan.run(visible)
	if aerr != nil {
		abort(c, aerr)
		return
	}
	c.JSON(http.StatusOK, renderList(total, page, f))
}

func (s *Server) getExecution(c *gin.Context) {
	if !requireScope(c, scopeExecutionRead) {
		return
	}
	e, ok := s.execution(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, toRecord(e, callerOf(c).kind == apiKey).render(formatOf(c)))
}

func (s *Server) deleteExecution(c *gin.Context) {
	f := formatOf(c)
	if !f.atLeast(v1_6) {
		abort(c, newError(errRouteNotFound))
		return
	}
	if !requireScope(c, scopeExecutionWrite) {
		return
	}
	e, ok := s.execution(c)
	if !ok {
		return
	}
	if callerOf(c).kind != apiKey {
		// Executions grant their creator read, not delete.
		abort(c, newError(errUserUnauthorized))
		return
	}
	if !e.Status.Status.IsFinished() {
		abort(c, newError(errExecutionRunning))
		return
	}
	if err := s.writer.Delete(c, e, client.Preconditions{UID: &e.UID}); err != nil && !apierrors.IsNotFound(err) {
		internalError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// createRequest is a create execution request, validated for its format.
type createRequest struct {
	data        string
	body        string
	async       bool
	path        string
	method      string
	headers     map[string]string
	scheduledAt *time.Time
}

func (s *Server) createExecution(c *gin.Context) {
	if !requireScope(c, scopeExecutionWrite) {
		return
	}
	f, who := formatOf(c), callerOf(c)
	if !s.rateLimit(c, f, who) {
		return
	}
	req, aerr := parseCreate(c, f, time.Now())
	if aerr != nil {
		abort(c, aerr)
		return
	}
	fn, ok := s.function(c, true)
	if !ok {
		return
	}
	if !who.mayExecute(fn.Spec.Execute) {
		abort(c, newError(errUserUnauthorized))
		return
	}

	ns, id := c.GetString(ctxProject), NewID()
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: ns},
		Spec: fnv1.ExecutionSpec{
			FunctionName: fn.Name,
			Trigger:      fnv1.TriggerHTTP,
			Data:         req.data,
			Body:         req.body,
			Method:       req.method,
			Path:         req.path,
			Headers:      req.headers,
			Async:        req.async,
			UserID:       who.userID,
		},
	}
	if req.scheduledAt != nil {
		// As in Appwrite: a delayed execution is triggered by its schedule.
		exec.Spec.Trigger = fnv1.TriggerSchedule
		exec.Spec.ScheduledAt = &metav1.Time{Time: *req.scheduledAt}
	}
	// The caller's JWT, and a body too large for the Execution, reach the
	// function through Secrets the Execution adopts.
	var secrets []string
	removeSecrets := func() {
		for _, name := range secrets {
			_ = s.writer.Delete(context.WithoutCancel(c), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		}
	}
	addSecret := func(name, key, value string) bool {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: ns,
				Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{key: []byte(value)},
		}
		if err := s.writer.Create(c, secret); err != nil {
			removeSecrets()
			internalError(c, fmt.Errorf("creating secret %s: %w", name, err))
			return false
		}
		secrets = append(secrets, name)
		return true
	}
	if who.kind == user && who.jwt != "" {
		exec.Spec.JWTSecretName = id + "-jwt"
		if !addSecret(exec.Spec.JWTSecretName, "jwt", who.jwt) {
			return
		}
	}
	if body := exec.Spec.Body; len(body) > fnv1.MaxBodyBytes {
		exec.Spec.Body = ""
		for part := 0; body != ""; part++ {
			n := min(len(body), fnv1.MaxBodySecretBytes)
			name := fmt.Sprintf("%s-body-%d", id, part)
			if !addSecret(name, "body", body[:n]) {
				return
			}
			exec.Spec.BodySecrets = append(exec.Spec.BodySecrets, name)
			body = body[n:]
		}
	}

	key := client.ObjectKeyFromObject(exec)
	events := s.waiters.add(key)
	defer s.waiters.remove(key, events)
	if err := s.writer.Create(c, exec); err != nil {
		removeSecrets()
		if apierrors.IsInvalid(err) {
			abort(c, newError(errArgumentInvalid, "%s", err.Error()))
			return
		}
		internalError(c, fmt.Errorf("creating the execution: %w", err))
		return
	}

	if req.async {
		// Wait until the cache has it, so reads that follow find it.
		if seen, ok := s.await(c, key, events, s.opts.CacheWait, func(*fnv1.Execution) bool { return true }); ok {
			exec = seen
		}
		c.JSON(http.StatusAccepted, toRecord(exec, who.kind == apiKey).render(f))
		return
	}

	bound := s.opts.SyncTimeout
	if !f.atLeast(v1_4) {
		bound = time.Duration(timeoutOf(fn))*time.Second + s.opts.SyncGrace
	}
	seen, done := s.await(c, key, events, bound, func(e *fnv1.Execution) bool { return e.Status.Status.IsFinished() })
	if seen != nil {
		exec = seen
	}
	if !done && (f.atLeast(v1_6) || c.Request.Context().Err() != nil) {
		if c.Request.Context().Err() == nil {
			abort(c, newError(errSyncTimeout))
		}
		return
	}
	rec := toRecord(exec, who.kind == apiKey)
	rec.AllResponseHeaders = true // a synchronous answer carries every header, as in Appwrite
	if !done {
		// Before 1.6 Appwrite answers a wait that ran out with a failed
		// record (its executor's timeout); here the execution goes on, and
		// its record will say how it ended.
		rec.Status, rec.StatusCode = string(fnv1.PhaseFailed), http.StatusInternalServerError
		if who.kind == apiKey {
			rec.Stderr = fmt.Sprintf("Operation timed out: the synchronous wait ended after %s; the execution goes on, see GET /v1/functions/%s/executions/%s",
				bound, fn.Name, exec.Name)
		}
	}
	c.JSON(http.StatusCreated, rec.render(f))
}

func timeoutOf(fn *fnv1.Function) int32 {
	if fn.Spec.Timeout > 0 {
		return fn.Spec.Timeout
	}
	return 15
}

// await reads the Execution from the cache after each informer event for
// it until cond holds, the bound passes or the request ends. It returns
// the last state seen (nil if none) and whether cond held.
func (s *Server) await(ctx context.Context, key types.NamespacedName, events <-chan struct{}, bound time.Duration, cond func(*fnv1.Execution) bool) (*fnv1.Execution, bool) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	var last *fnv1.Execution
	for {
		e := &fnv1.Execution{}
		if err := s.reader.Get(ctx, key, e); err == nil {
			last = e
			if cond(e) {
				return e, true
			}
		}
		select {
		case <-events:
		case <-timer.C:
			return last, false
		case <-ctx.Done():
			return last, false
		}
	}
}

// rateLimit applies Appwrite 1.0's limit on creating executions: per IP
// and user, for formats before 1.4, never for API keys.
func (s *Server) rateLimit(c *gin.Context, f format, who caller) bool {
	if s.limiter == nil || f.atLeast(v1_4) || who.kind == apiKey {
		return true
	}
	key := fmt.Sprintf("%s/ip:%s,userId:%s", c.GetString(ctxProject), c.ClientIP(), who.userID)
	lc, err := s.limiter.Get(c, key)
	if err != nil {
		internalError(c, err)
		return false
	}
	c.Header("X-RateLimit-Limit", strconv.FormatInt(lc.Limit, 10))
	c.Header("X-RateLimit-Remaining", strconv.FormatInt(lc.Remaining, 10))
	c.Header("X-RateLimit-Reset", strconv.FormatInt(lc.Reset, 10))
	if lc.Reached {
		abort(c, newError(errRateLimit))
		return false
	}
	return true
}

// parseCreate reads and validates the create execution parameters of a format.
func parseCreate(c *gin.Context, f format, now time.Time) (createRequest, *apiError) {
	req := createRequest{}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, newError(errArgumentInvalid, "Request body is larger than %d bytes.", maxRequestBody)
		}
		return req, newError(errArgumentInvalid, "Could not read the request body: %v", err)
	}
	params := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(raw); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		if err := json.Unmarshal(t, &params); err != nil {
			return req, newError(errArgumentInvalid, "Invalid JSON body: %v", err)
		}
	}
	param := func(name string) (json.RawMessage, bool) {
		v, ok := params[name]
		if !ok || bytes.Equal(v, []byte("null")) {
			return nil, false
		}
		return v, true
	}
	str := func(name string, max int, unit string) (string, *apiError) {
		v, ok := param(name)
		if !ok {
			return "", nil
		}
		var s string
		n := 0
		if json.Unmarshal(v, &s) == nil {
			n = len(s)
			if unit == "chars" {
				n = utf8.RuneCountInString(s)
			}
		}
		if json.Unmarshal(v, &s) != nil || n > max {
			return "", invalidParam(name, fmt.Sprintf("Value must be a valid string and no longer than %d %s", max, unit))
		}
		return s, nil
	}

	// async: a strict JSON boolean before 1.6, then also "true"/"1"/….
	if v, ok := param("async"); ok {
		var b bool
		if json.Unmarshal(v, &b) == nil {
			req.async = b
		} else if parsed, ok := looseBool(v); ok && f.atLeast(v1_6) {
			req.async = parsed
		} else {
			return req, invalidParam("async", "Value must be a valid boolean")
		}
	}

	var aerr *apiError
	if !f.atLeast(v1_4) {
		req.data, aerr = str("data", maxData, "chars")
		return req, aerr
	}
	if req.body, aerr = str("body", maxBody, "bytes"); aerr != nil {
		return req, aerr
	}
	if req.path, aerr = str("path", maxPath, "chars"); aerr != nil {
		return req, aerr
	}
	if req.path == "" {
		req.path = "/"
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	if f.atLeast(v1_8) {
		methods = append(methods, "HEAD")
	}
	req.method = "POST"
	if v, ok := param("method"); ok {
		var m string
		if json.Unmarshal(v, &m) != nil || !contains(methods, m) {
			return req, invalidParam("method", fmt.Sprintf("Value must be one of (%s)", strings.Join(methods, ", ")))
		}
		req.method = m
	}
	if v, ok := param("headers"); ok {
		if req.headers, aerr = parseHeaders(v, f); aerr != nil {
			return req, aerr
		}
	}
	if f.atLeast(v1_6) {
		if v, ok := param("scheduledAt"); ok && !bytes.Equal(v, []byte(`""`)) {
			if !req.async {
				return req, newError(errBadRequest, "Scheduled executions must run asynchronously. Set scheduledAt to a future date, or set async to true.")
			}
			at, ok := parseScheduledAt(v)
			if !ok || at.Before(now.Add(time.Minute)) {
				return req, newError(errBadRequest, "Execution schedule must be a valid date, and at least 1 minute from now")
			}
			at = at.Truncate(time.Minute) // Appwrite schedules at minute precision
			req.scheduledAt = &at
		}
	}
	return req, nil
}

// parseScheduledAt reads an ISO 8601 datetime as the SDKs send it, with or
// without fractional seconds and zone (UTC when it has none).
func parseScheduledAt(v json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func looseBool(v json.RawMessage) (bool, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return false, false
		}
		s = n.String()
	}
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

const headersMessage = `Invalid headers: Alphanumeric characters or hyphens only, cannot start with "x-appwrite", maximum 100 keys, and total size 16384.`

// parseHeaders reads the headers parameter: a JSON object (or, from 1.6,
// a JSON string holding one), validated like Appwrite's Headers validator.
func parseHeaders(v json.RawMessage, f format) (map[string]string, *apiError) {
	var obj map[string]any
	if json.Unmarshal(v, &obj) != nil {
		var s string
		if !f.atLeast(v1_6) || json.Unmarshal(v, &s) != nil || len(s) > 65535 || json.Unmarshal([]byte(s), &obj) != nil {
			return nil, invalidParam("headers", "Value must be a valid object.")
		}
	}
	out := make(map[string]string, len(obj))
	size := 0
	for k, val := range obj {
		var sv string
		switch x := val.(type) {
		case string:
			sv = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			sv = string(b)
		}
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-appwrite-") {
			if f.atLeast(v1_6) {
				return nil, invalidParam("headers", headersMessage)
			}
			continue // the server sets these; a caller cannot override them
		}
		if f.atLeast(v1_6) && !validHeaderKey(k) {
			return nil, invalidParam("headers", headersMessage)
		}
		size += len(k) + len(sv)
		out[lk] = sv
	}
	if len(out) > maxHeaders || size >= maxHeadersSize {
		return nil, invalidParam("headers", headersMessage)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func validHeaderKey(k string) bool {
	if k == "" || k[0] == '-' || k[len(k)-1] == '-' {
		return false
	}
	for _, r := range k {
		if !(r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}
