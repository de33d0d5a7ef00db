package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
)

// createExecution checks that the caller may run the function before it
// reads the request body, creates the Execution and its Secrets, and
// answers: at once when asynchronous, else once finished.
func (s *Server) createExecution(ctx context.Context, r request) (int, any, *apiError) {
	fn, aerr := s.function(ctx, r, true)
	if aerr != nil {
		return 0, nil, aerr
	}
	if aerr := unrunnable(fn); aerr != nil {
		return 0, nil, aerr
	}
	if !r.caller.mayExecute(fn.Spec.Execute) {
		return 0, nil, newError(errUserUnauthorized)
	}
	// Wait on events from before the create, so none is missed.
	key := types.NamespacedName{Namespace: r.project, Name: NewID()}
	events := s.waiters.add(key)
	defer s.waiters.remove(key, events)
	exec, async, aerr := s.submit(ctx, r, fn, key.Name)
	if aerr != nil {
		return 0, nil, aerr
	}
	if async {
		return s.answerAsync(ctx, r, fn, exec, events)
	}
	defer s.syncWaiters.give(1)
	return s.answerSync(ctx, r, fn, exec, events)
}

// defaultMaxSyncWaiters is about what a small cluster finishes within the
// 30 s sync timeout: more callers would wait only to time out.
const defaultMaxSyncWaiters = 64

// takeSyncWaiter reserves a synchronous caller's wait, or refuses the
// request, before its execution is created.
func (s *Server) takeSyncWaiter() *apiError {
	if s.syncWaiters.take(1) {
		return nil
	}
	aerr := newErrorf(errRateLimit, "Too many synchronous executions are waiting. Please try again in a moment, or use asynchronous execution.")
	aerr.retryAfter = 1
	return aerr
}

// submit reads the request's parameters, its body counted against the
// facade's body budget, reserves a synchronous caller's wait, and creates
// the Execution, then the Secrets of the request. The body is no longer
// held once it returns, before any wait; the wait is the caller's to give
// back once answered.
func (s *Server) submit(ctx context.Context, r request, fn *fnv1.Function, id string) (*fnv1.Execution, bool, *apiError) {
	weight, aerr := s.reserveBody(r.size)
	if aerr != nil {
		return nil, false, aerr
	}
	defer s.bodies.give(weight)
	raw, aerr := readBody(r.body, r.size)
	if aerr != nil {
		return nil, false, aerr
	}
	p, aerr := parseCreate(raw, r.format, time.Now())
	if aerr != nil {
		return nil, false, aerr
	}
	if r.clientIP != "" {
		// As Appwrite sets it: callers cannot (parseHeaders).
		if p.headers == nil {
			p.headers = map[string]string{}
		}
		p.headers[clientIPHeader] = r.clientIP
	}
	if !p.async {
		if aerr := s.takeSyncWaiter(); aerr != nil {
			return nil, false, aerr
		}
	}
	exec, aerr := s.create(ctx, r, fn, id, p)
	if aerr != nil && !p.async {
		s.syncWaiters.give(1)
	}
	return exec, p.async, aerr
}

// create creates the Execution the request asks for, then its Secrets.
func (s *Server) create(ctx context.Context, r request, fn *fnv1.Function, id string, p createParams) (*fnv1.Execution, *apiError) {
	exec, secrets, err := newExecution(s.writer.Scheme(), r.project, id, fn, p, r.caller)
	if err != nil {
		return nil, internalError(err)
	}
	if err := s.writer.Create(ctx, exec); err != nil {
		if apierrors.IsInvalid(err) {
			return nil, newErrorf(errArgumentInvalid, "%s", err.Error())
		}
		return nil, internalError(fmt.Errorf("creating the execution: %w", err))
	}
	if err := s.createSecrets(ctx, exec, secrets); err != nil {
		return nil, internalError(err)
	}
	return exec, nil
}

// reserveBody takes a large body's declared size (the largest allowed when
// it declares none) from the body budget, or refuses the request unread.
// Small bodies are not counted: large ones cannot crowd them out.
func (s *Server) reserveBody(size int64) (int64, *apiError) {
	switch {
	case size > maxRequestBody:
		return 0, tooLarge()
	case size >= 0 && size <= smallBody:
		return 0, nil
	case size < 0:
		size = maxRequestBody
	}
	if !s.bodies.take(size) {
		aerr := newErrorf(errRateLimit, "Too many large requests are being received. Please try again in a moment.")
		aerr.retryAfter = 1
		return 0, aerr
	}
	return size, nil
}

// newExecution is the Execution a create request asks for, owned by its
// Function as the operator would make it (so it need not), and the Secrets
// it refers to: the caller's JWT, and a body too large for the object, in
// parts that share the request's bytes.
func newExecution(scheme *runtime.Scheme, namespace, id string, fn *fnv1.Function, p createParams, who caller) (*fnv1.Execution, []execSecret, error) {
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: namespace, Annotations: executionAnnotations(fn)},
		Spec: fnv1.ExecutionSpec{
			FunctionName: fn.Name,
			Trigger:      fnv1.TriggerHTTP,
			Data:         p.data,
			Method:       p.method,
			Path:         p.path,
			Headers:      p.headers,
			Async:        p.async,
			UserID:       who.userID,
		},
	}
	if err := controllerutil.SetOwnerReference(fn, exec, scheme); err != nil {
		return nil, nil, err
	}
	if p.scheduledAt != nil {
		// As in Appwrite: a delayed execution is triggered by its schedule.
		exec.Spec.Trigger = fnv1.TriggerSchedule
		exec.Spec.ScheduledAt = &metav1.Time{Time: *p.scheduledAt}
	}
	var secrets []execSecret
	if who.kind == user && who.jwt != "" {
		exec.Spec.JWTSecretName = id + "-jwt"
		secrets = append(secrets, execSecret{exec.Spec.JWTSecretName, contract.JWTSecretKey, []byte(who.jwt)})
	}
	if len(p.body) <= fnv1.MaxBodyBytes {
		exec.Spec.Body = string(p.body)
		return exec, secrets, nil
	}
	for part, body := 0, p.body; len(body) > 0; part++ {
		n := min(len(body), fnv1.MaxBodySecretBytes)
		name := fmt.Sprintf("%s-body-%d", id, part)
		secrets = append(secrets, execSecret{name, contract.BodySecretKey, body[:n:n]})
		exec.Spec.BodySecrets = append(exec.Spec.BodySecrets, name)
		body = body[n:]
	}
	return exec, secrets, nil
}

// answerAsync answers an asynchronous create once the cache has the new
// Execution, so reads that follow find it.
func (s *Server) answerAsync(ctx context.Context, r request, fn *fnv1.Function, exec *fnv1.Execution, events <-chan struct{}) (int, any, *apiError) {
	seen, ok := s.await(ctx, client.ObjectKeyFromObject(exec), events, s.opts.CacheWait, func(*fnv1.Execution) bool { return true })
	if ok {
		// Finished already, its outputs may be large: read them.
		var aerr *apiError
		if exec, aerr = s.withOutputs(ctx, seen); aerr != nil {
			return 0, nil, aerr
		}
	}
	return http.StatusAccepted, toRecord(exec, fn, r.caller.kind == apiKey).render(r.format), nil
}

// answerSync waits for a synchronous execution to finish and answers its
// record with every response header, as Appwrite does.
func (s *Server) answerSync(ctx context.Context, r request, fn *fnv1.Function, exec *fnv1.Execution, events <-chan struct{}) (int, any, *apiError) {
	bound := s.opts.SyncTimeout
	if !r.format.atLeast(v1_4) {
		bound = time.Duration(fn.TimeoutSeconds())*time.Second + s.opts.SyncGrace
	}
	seen, done := s.await(ctx, client.ObjectKeyFromObject(exec), events, bound, func(e *fnv1.Execution) bool { return e.Status.Status.IsFinished() })
	switch {
	case !done && ctx.Err() != nil:
		return noAnswer, nil, nil
	case !done && r.format.atLeast(v1_6):
		return 0, nil, newError(errSyncTimeout)
	case seen != nil:
		var aerr *apiError
		if exec, aerr = s.withOutputs(ctx, seen); aerr != nil {
			return 0, nil, aerr
		}
	}
	rec := toRecord(exec, fn, r.caller.kind == apiKey)
	rec.SyncAnswer = true
	if !done {
		// Before 1.6 Appwrite answers a wait that ran out with a failed
		// record (its executor's timeout); here the execution goes on, and
		// its record will say how it ended.
		rec.Status, rec.StatusCode = string(fnv1.PhaseFailed), http.StatusInternalServerError
		if r.caller.kind == apiKey {
			rec.Stderr = fmt.Sprintf("Operation timed out: the synchronous wait ended after %s; the execution goes on, see GET /v1/functions/%s/executions/%s",
				bound, rec.FunctionID, exec.Name)
		}
	}
	body := rec.render(r.format)
	if r.format.atLeast(v1_6) {
		return http.StatusCreated, withHeaders{body, map[string]string{"X-Appwrite-Execution-Id": exec.Name}}, nil
	}
	return http.StatusCreated, body, nil
}
