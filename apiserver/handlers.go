package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
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
// exist) that the caller may see.
func (s *Server) execution(ctx context.Context, r request) (*fnv1.Execution, *apiError) {
	if _, aerr := s.function(ctx, r, false); aerr != nil {
		return nil, aerr
	}
	e := &fnv1.Execution{}
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: r.project, Name: r.executionID}, e)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, internalError(err)
	}
	if err != nil || e.Spec.FunctionName != r.functionID || !r.caller.canSee(e.Spec.UserID) {
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
	list, err := kube.ListExecutionsOf(ctx, s.reader, r.project, r.functionID)
	if err != nil {
		return 0, nil, internalError(err)
	}
	visible := make([]record, 0, len(list.Items))
	for i := range list.Items {
		if r.caller.canSee(list.Items[i].Spec.UserID) {
			visible = append(visible, toRecord(&list.Items[i], r.caller.kind == apiKey))
		}
	}
	total, page, aerr := plan.run(visible)
	if aerr != nil {
		return 0, nil, aerr
	}
	return http.StatusOK, renderList(total, page, r.format), nil
}

func (s *Server) getExecution(ctx context.Context, r request) (int, any, *apiError) {
	e, aerr := s.execution(ctx, r)
	if aerr != nil {
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
	if err := s.writer.Delete(ctx, e, client.Preconditions{UID: &e.UID}); err != nil && !apierrors.IsNotFound(err) {
		return 0, nil, internalError(err)
	}
	return http.StatusNoContent, nil, nil
}
