package apiserver

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/execindex"
)

// waiters wakes requests waiting on an Execution whenever the informer
// sees it change: the sync create path waits on these events, never on
// a polling loop.
type waiters struct {
	mu sync.Mutex
	m  map[types.NamespacedName]map[chan struct{}]struct{}
}

func newWaiters() *waiters {
	return &waiters{m: map[types.NamespacedName]map[chan struct{}]struct{}{}}
}

// add registers a waiter; the channel receives after each event for key.
func (w *waiters) add(key types.NamespacedName) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[key] == nil {
		w.m[key] = map[chan struct{}]struct{}{}
	}
	w.m[key][ch] = struct{}{}
	return ch
}

func (w *waiters) remove(key types.NamespacedName, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m[key], ch)
	if len(w.m[key]) == 0 {
		delete(w.m, key)
	}
}

func (w *waiters) notify(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[key] {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the waiter re-reads the index anyway
		}
	}
}

// executionEvents feeds the index, then wakes the execution's waiters:
// one registration, in that order, so a woken waiter finds the change in
// the index, and a read after an answered create finds the new execution.
type executionEvents struct {
	index   *execindex.Index
	waiters *waiters
}

func (h executionEvents) OnAdd(obj any, initial bool) {
	h.index.OnAdd(obj, initial)
	h.waiters.notify(obj)
}

func (h executionEvents) OnUpdate(oldObj, newObj any) {
	h.index.OnUpdate(oldObj, newObj)
	h.waiters.notify(newObj)
}

func (h executionEvents) OnDelete(obj any) {
	h.index.OnDelete(obj)
	h.waiters.notify(obj)
}

// await reads the Execution from the index after each informer event for
// it until cond holds, the bound passes or the request ends. It returns
// the last state seen (nil if none; the informer's object, read-only) and
// whether cond held.
func (s *Server) await(ctx context.Context, key types.NamespacedName, events <-chan struct{}, bound time.Duration, cond func(*fnv1.Execution) bool) (*fnv1.Execution, bool) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	var last *fnv1.Execution
	for {
		if e, ok := s.index.Get(key.Namespace, key.Name); ok {
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
