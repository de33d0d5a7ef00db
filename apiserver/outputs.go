package apiserver

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// liveReads bounds the API server reads one list makes at once.
const liveReads = 8

// withOutputs is e with its outputs: e itself, or, when the cache left
// them out (kube.IsStripped), the object read from the API server.
func (s *Server) withOutputs(ctx context.Context, e *fnv1.Execution) (*fnv1.Execution, *apiError) {
	if !kube.IsStripped(e) {
		return e, nil
	}
	live, err := s.readLive(ctx, e)
	switch {
	case err != nil:
		return nil, internalError(err)
	case live == nil:
		return nil, newError(errExecutionNotFound)
	}
	return live, nil
}

// readLive reads a stripped Execution from the API server; nil when it is
// gone, or its name now belongs to another execution.
func (s *Server) readLive(ctx context.Context, e *fnv1.Execution) (*fnv1.Execution, error) {
	live := &fnv1.Execution{}
	if err := s.live.Get(ctx, client.ObjectKeyFromObject(e), live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if live.UID != e.UID {
		return nil, nil
	}
	return live, nil
}

// pageWithOutputs replaces the page's stripped executions with the live
// objects, read liveReads at a time: a page is bounded by its limit, and
// only large finished records are stripped. Those deleted meanwhile are
// left out.
func (s *Server) pageWithOutputs(ctx context.Context, page []*fnv1.Execution) ([]*fnv1.Execution, error) {
	var stripped []int
	for i, e := range page {
		if kube.IsStripped(e) {
			stripped = append(stripped, i)
		}
	}
	if len(stripped) == 0 {
		return page, nil
	}
	errs := make([]error, len(stripped))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(liveReads, len(stripped)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(stripped) && ctx.Err() == nil; j = int(next.Add(1) - 1) {
				i := stripped[j]
				page[i], errs[j] = s.readLive(ctx, page[i])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(page, func(e *fnv1.Execution) bool { return e == nil }), nil
}
