package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
)

// createExecution creates the Execution a request asks for, with its
// Secrets, and answers it: at once when asynchronous, else once finished.
func (s *Server) createExecution(ctx context.Context, r request) (int, any, *apiError) {
	p, aerr := parseCreate(r.body, r.format, time.Now())
	if aerr != nil {
		return 0, nil, aerr
	}
	fn, aerr := s.function(ctx, r, true)
	if aerr != nil {
		return 0, nil, aerr
	}
	if !r.caller.mayExecute(fn.Spec.Execute) {
		return 0, nil, newError(errUserUnauthorized)
	}
	exec, secrets := newExecution(r.project, NewID(), fn.Name, p, r.caller)
	store := &secretStore{writer: s.writer, namespace: r.project}
	if err := store.create(ctx, secrets); err != nil {
		return 0, nil, internalError(err)
	}
	// Wait on events from before the create, so none is missed.
	key := client.ObjectKeyFromObject(exec)
	events := s.waiters.add(key)
	defer s.waiters.remove(key, events)
	if err := s.writer.Create(ctx, exec); err != nil {
		store.rollback(ctx)
		if apierrors.IsInvalid(err) {
			return 0, nil, newErrorf(errArgumentInvalid, "%s", err.Error())
		}
		return 0, nil, internalError(fmt.Errorf("creating the execution: %w", err))
	}
	if p.async {
		return s.answerAsync(ctx, r, exec, events)
	}
	return s.answerSync(ctx, r, fn, exec, events)
}

// newExecution is the Execution a create request asks for, and the
// Secrets it refers to: the caller's JWT, and a body too large for the
// object, in parts.
func newExecution(namespace, id, function string, p createParams, who caller) (*fnv1.Execution, []execSecret) {
	exec := &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: namespace},
		Spec: fnv1.ExecutionSpec{
			FunctionName: function,
			Trigger:      fnv1.TriggerHTTP,
			Data:         p.data,
			Method:       p.method,
			Path:         p.path,
			Headers:      p.headers,
			Async:        p.async,
			UserID:       who.userID,
		},
	}
	if p.scheduledAt != nil {
		// As in Appwrite: a delayed execution is triggered by its schedule.
		exec.Spec.Trigger = fnv1.TriggerSchedule
		exec.Spec.ScheduledAt = &metav1.Time{Time: *p.scheduledAt}
	}
	var secrets []execSecret
	if who.kind == user && who.jwt != "" {
		exec.Spec.JWTSecretName = id + "-jwt"
		secrets = append(secrets, execSecret{exec.Spec.JWTSecretName, contract.JWTSecretKey, who.jwt})
	}
	if len(p.body) <= fnv1.MaxBodyBytes {
		exec.Spec.Body = p.body
		return exec, secrets
	}
	for part, body := 0, p.body; body != ""; part++ {
		n := min(len(body), fnv1.MaxBodySecretBytes)
		name := fmt.Sprintf("%s-body-%d", id, part)
		secrets = append(secrets, execSecret{name, contract.BodySecretKey, body[:n]})
		exec.Spec.BodySecrets = append(exec.Spec.BodySecrets, name)
		body = body[n:]
	}
	return exec, secrets
}

// answerAsync answers an asynchronous create once the cache has the new
// Execution, so reads that follow find it.
func (s *Server) answerAsync(ctx context.Context, r request, exec *fnv1.Execution, events <-chan struct{}) (int, any, *apiError) {
	seen, ok := s.await(ctx, client.ObjectKeyFromObject(exec), events, s.opts.CacheWait, func(*fnv1.Execution) bool { return true })
	if ok {
		// Finished already, its outputs may be large: read them.
		var aerr *apiError
		if exec, aerr = s.withOutputs(ctx, seen); aerr != nil {
			return 0, nil, aerr
		}
	}
	return http.StatusAccepted, toRecord(exec, r.caller.kind == apiKey).render(r.format), nil
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
	rec := toRecord(exec, r.caller.kind == apiKey)
	rec.AllResponseHeaders = true
	if !done {
		// Before 1.6 Appwrite answers a wait that ran out with a failed
		// record (its executor's timeout); here the execution goes on, and
		// its record will say how it ended.
		rec.Status, rec.StatusCode = string(fnv1.PhaseFailed), http.StatusInternalServerError
		if r.caller.kind == apiKey {
			rec.Stderr = fmt.Sprintf("Operation timed out: the synchronous wait ended after %s; the execution goes on, see GET /v1/functions/%s/executions/%s",
				bound, fn.Name, exec.Name)
		}
	}
	return http.StatusCreated, rec.render(r.format), nil
}
