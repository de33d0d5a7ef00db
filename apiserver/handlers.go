package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive"
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
// when it is missing, or disabled and hidden from the caller (see
// hidesDisabled).
func (s *Server) function(ctx context.Context, r request, creating bool) (*fnv1.Function, *apiError) {
	fn, aerr := s.resolveFunction(ctx, r.project, r.functionID)
	if aerr != nil {
		return nil, aerr
	}
	if fn == nil || !fn.IsEnabled() && hidesDisabled(r, creating) {
		return nil, newError(errFunctionNotFound)
	}
	return fn, nil
}

// hidesDisabled tells whether a disabled function is function_not_found
// to the request, as in Appwrite: 1.0–1.3 refuse every create and show
// its executions; 1.4+ let API keys create, list and get, and hide the
// function from every other caller.
func hidesDisabled(r request, creating bool) bool {
	if !r.format.atLeast(v1_4) {
		return creating
	}
	return r.caller.kind != apiKey
}

// execution returns an execution of the request's function (which must
// exist) that the caller may see, and the function: the index's object,
// read-only, which may lack its outputs (see withOutputs). When only the
// execution is not found, the function comes with the error.
func (s *Server) execution(ctx context.Context, r request) (*fnv1.Execution, *fnv1.Function, *apiError) {
	fn, aerr := s.function(ctx, r, false)
	if aerr != nil {
		return nil, nil, aerr
	}
	e, ok := s.index.Get(r.project, r.executionID)
	if !ok || e.Spec.FunctionName != fn.Name || !r.caller.canSee(e.Spec.UserID) {
		return nil, fn, newError(errExecutionNotFound)
	}
	return e, fn, nil
}

func (s *Server) listExecutions(ctx context.Context, r request) (int, any, *apiError) {
	plan, aerr := planList(r.format, r.query)
	if aerr != nil {
		return 0, nil, aerr
	}
	fn, aerr := s.function(ctx, r, false)
	if aerr != nil {
		return 0, nil, aerr
	}
	var total int
	var page []*fnv1.Execution
	if s.opts.Archive != nil && r.caller.kind != guest {
		total, page, aerr = s.listWithArchive(ctx, r, fn, plan)
	} else {
		total, page, aerr = s.listPage(r, fn, plan)
	}
	if aerr != nil {
		return 0, nil, aerr
	}
	page, err := s.pageWithOutputs(ctx, page)
	if err != nil {
		return 0, nil, internalError(err)
	}
	items := make([]rawJSON, len(page))
	for i, e := range page {
		if items[i], err = s.rendered.render(e, fn, r.caller.kind == apiKey, r.format); err != nil {
			return 0, nil, internalError(err)
		}
	}
	return http.StatusOK, renderList(total, items), nil
}

func (s *Server) getExecution(ctx context.Context, r request) (int, any, *apiError) {
	e, fn, aerr := s.execution(ctx, r)
	if aerr == nil {
		e, aerr = s.withOutputs(ctx, e)
	}
	// Not an object (any more: it may go between the index and the read
	// of its outputs), so perhaps archived.
	if aerr != nil && aerr.Type == errExecutionNotFound && fn != nil && s.opts.Archive != nil {
		e, aerr = s.archivedExecution(ctx, r, fn)
	}
	if aerr != nil {
		return 0, nil, aerr
	}
	return http.StatusOK, toRecord(e, fn, r.caller.kind == apiKey).render(r.format), nil
}

// archivedExecution reads, with its outputs, a record of fn that is no
// longer an object, if the caller may see it: the same rule as for the
// objects (execution).
func (s *Server) archivedExecution(ctx context.Context, r request, fn *fnv1.Function) (*fnv1.Execution, *apiError) {
	e, err := s.opts.Archive.Get(ctx, r.project, fn.Name, r.executionID)
	switch {
	case errors.Is(err, archive.ErrNotFound):
		return nil, newError(errExecutionNotFound)
	case err != nil:
		return nil, internalError(err)
	case !r.caller.canSee(e.Spec.UserID):
		return nil, newError(errExecutionNotFound)
	}
	return e, nil
}

func (s *Server) deleteExecution(ctx context.Context, r request) (int, any, *apiError) {
	e, fn, aerr := s.execution(ctx, r)
	if aerr != nil && aerr.Type == errExecutionNotFound && fn != nil && s.opts.Archive != nil {
		if _, aerr = s.archivedExecution(ctx, r, fn); aerr == nil {
			aerr = s.deleteArchived(ctx, r, fn)
		}
		if aerr != nil {
			return 0, nil, aerr
		}
		return http.StatusNoContent, nil, nil
	}
	if aerr != nil {
		return 0, nil, aerr
	}
	if r.caller.kind != apiKey {
		// Executions grant their creator read, not delete.
		return 0, nil, newError(errUserUnauthorized)
	}
	if !e.Status.Status.IsFinished() {
		if aerr := s.cancelScheduled(ctx, e); aerr != nil {
			return 0, nil, aerr
		}
		return http.StatusNoContent, nil, nil
	}
	// A new object: the index's belongs to the informer.
	uid := e.UID
	gone := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name}}
	if err := s.writer.Delete(ctx, gone, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return 0, nil, internalError(err)
	}
	if s.opts.Archive != nil {
		// A finished record may be archived already (the keep-live):
		// it goes too, or a get would find it there.
		if aerr := s.deleteArchived(ctx, r, fn, uid); aerr != nil {
			return 0, nil, aerr
		}
	}
	return http.StatusNoContent, nil, nil
}

// deleteArchived deletes the request's record from the archive, for API
// keys only, like the objects; the operator will not archive the objects
// of uids (being deleted) after that.
func (s *Server) deleteArchived(ctx context.Context, r request, fn *fnv1.Function, uids ...types.UID) *apiError {
	if r.caller.kind != apiKey {
		return newError(errUserUnauthorized)
	}
	if _, err := s.opts.Archive.Delete(ctx, r.project, fn.Name, r.executionID, uids...); err != nil {
		return internalError(err)
	}
	return nil
}

// dueMargin is how long before its time a scheduled execution counts as
// starting: the operator's clock may run a little ahead of the facade's.
const dueMargin = 5 * time.Second

// errStarted stops a cancellation whose execution has begun.
var errStarted = errors.New("the execution has started")

// cancelScheduled deletes a scheduled execution that is not due yet, as
// Appwrite 1.6+ deletes its schedule: until it is due the operator has
// made nothing for it (no Job, no pod), so deleting the object cancels it,
// and garbage collection takes the request Secrets it owns. The check
// reads the live object and the delete requires that very version, so an
// execution the operator starts meanwhile is not deleted: it is in
// progress (400 execution_in_progress), like any unfinished one.
func (s *Server) cancelScheduled(ctx context.Context, cached *fnv1.Execution) *apiError {
	e := &fnv1.Execution{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := s.live.Get(ctx, client.ObjectKeyFromObject(cached), e); err != nil {
			return err
		}
		if e.UID != cached.UID {
			return apierrors.NewNotFound(fnv1.GroupVersion.WithResource("executions").GroupResource(), e.Name)
		}
		if !notDue(e, time.Now()) {
			return errStarted
		}
		uid, version := e.UID, e.ResourceVersion
		return s.writer.Delete(ctx, e, client.Preconditions{UID: &uid, ResourceVersion: &version})
	})
	switch {
	case errors.Is(err, errStarted):
		return newError(errExecutionRunning)
	case apierrors.IsNotFound(err):
		return newError(errExecutionNotFound)
	case err != nil:
		return internalError(err)
	}
	return nil
}

// notDue tells whether e is a scheduled execution the operator has not
// started: delayed, without a Job, and not due within dueMargin of now.
func notDue(e *fnv1.Execution, now time.Time) bool {
	switch e.Status.Status {
	case fnv1.PhaseScheduled, "":
	default:
		return false
	}
	return e.Spec.ScheduledAt != nil && e.Status.JobName == "" && e.Spec.ScheduledAt.After(now.Add(dueMargin))
}
