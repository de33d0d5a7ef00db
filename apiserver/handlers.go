package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
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

// function returns the project's Function, answering function_not_found
// when it is missing, or disabled and enabled is required.
func (s *Server) function(ctx context.Context, r request, mustBeEnabled bool) (*fnv1.Function, *apiError) {
	fn := &fnv1.Function{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: r.project, Name: r.functionID}, fn); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			return nil, newError(errFunctionNotFound)
		}
		return nil, internalError(err)
	}
	if mustBeEnabled && !fn.IsEnabled() {
		return nil, newError(errFunctionNotFound)
	}
	return fn, nil
}

// execution returns an execution of the request's function (which must
// exist) that the caller may see: the index's object, read-only, which may
// lack its outputs (see withOutputs).
func (s *Server) execution(ctx context.Context, r request) (*fnv1.Execution, *apiError) {
	if _, aerr := s.function(ctx, r, false); aerr != nil {
		return nil, aerr
	}
	e, ok := s.index.Get(r.project, r.executionID)
	if !ok || e.Spec.FunctionName != r.functionID || !r.caller.canSee(e.Spec.UserID) {
		return nil, newError(errExecutionNotFound)
	}
	return e, nil
}

func (s *Server) listExecutions(ctx context.Context, r request) (int, any, *apiError) {
	plan, aerr := planList(r.format, r.query)
	if aerr != nil {
		return 0, nil, aerr
	}
	if _, aerr := s.function(ctx, r, false); aerr != nil {
		return 0, nil, aerr
	}
	total, page, aerr := s.listPage(r, plan)
	if aerr != nil {
		return 0, nil, aerr
	}
	page, err := s.pageWithOutputs(ctx, page)
	if err != nil {
		return 0, nil, internalError(err)
	}
	recs := make([]record, len(page))
	for i, e := range page {
		recs[i] = toRecord(e, r.caller.kind == apiKey)
	}
	return http.StatusOK, renderList(total, recs, r.format), nil
}

func (s *Server) getExecution(ctx context.Context, r request) (int, any, *apiError) {
	e, aerr := s.execution(ctx, r)
	if aerr != nil {
		return 0, nil, aerr
	}
	if e, aerr = s.withOutputs(ctx, e); aerr != nil {
		return 0, nil, aerr
	}
	return http.StatusOK, toRecord(e, r.caller.kind == apiKey).render(r.format), nil
}

func (s *Server) deleteExecution(ctx context.Context, r request) (int, any, *apiError) {
	e, aerr := s.execution(ctx, r)
	if aerr != nil {
		return 0, nil, aerr
	}
	if r.caller.kind != apiKey {
		// Executions grant their creator read, not delete.
		return 0, nil, newError(errUserUnauthorized)
	}
	if !e.Status.Status.IsFinished() {
		return 0, nil, newError(errExecutionRunning)
	}
	// A new object: the index's belongs to the informer.
	uid := e.UID
	gone := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name}}
	if err := s.writer.Delete(ctx, gone, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return 0, nil, internalError(err)
	}
	return http.StatusNoContent, nil, nil
}
