package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Admission keeps a burst from becoming more pods than the cluster runs
// well: an Execution ready to start gets a slot only while its Function
// runs fewer than its maxConcurrency and its namespace fewer than
// MaxRunningPerNamespace; the others stay waiting and get slots in the
// order they were queued as running ones finish.

// hold says which limit keeps a waiting Execution from starting.
type hold int

const (
	notHeld hold = iota
	heldByFunction
	heldByNamespace
)

// candidate is what admission needs of one unfinished Execution.
type candidate struct {
	name, function string
	// queued is when it joined the queue: its creation, or its
	// scheduledAt when that is later.
	queued time.Time
	// running: it has a Job (or was just given a slot for one).
	running bool
}

// verdict is the plan for one waiting candidate.
type verdict struct {
	candidate
	hold hold
}

// planSlots gives the waiting candidates slots in queue order (time, then
// name), each while both its Function's limit and the namespace cap (0:
// none) have room. An older Execution always gets a slot before a newer
// one that needs the same room; one held by its own Function's limit does
// not hold back other Functions.
func planSlots(cands []candidate, nsCap int, limitOf func(function string) int) []verdict {
	perFunction := map[string]int{}
	total := 0
	var waiting []candidate
	for _, c := range cands {
		if c.running {
			perFunction[c.function]++
			total++
		} else {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b candidate) int {
		if c := a.queued.Compare(b.queued); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	verdicts := make([]verdict, len(waiting))
	for i, c := range waiting {
		v := verdict{candidate: c}
		switch {
		case perFunction[c.function] >= limitOf(c.function):
			v.hold = heldByFunction
		case nsCap > 0 && total >= nsCap:
			v.hold = heldByNamespace
		default:
			perFunction[c.function]++
			total++
		}
		verdicts[i] = v
	}
	return verdicts
}

// admission is the operator's ledger of slots. The running Executions are
// read from the cache each time, so a restart loses nothing; the ledger
// only remembers those this process gave a slot whose Job or recorded
// jobName the cache may not show yet, so that no two reconciles (several
// may run at once) hand out the same slot. The mutex orders decisions.
type admission struct {
	mu      sync.Mutex
	started map[types.NamespacedName]bool
}

// admit says whether exec, with nothing else in its way, may start now:
// "" if so (the slot is then its own), else why it waits.
func (r *ExecutionReconciler) admit(ctx context.Context, exec *fnv1.Execution) (string, error) {
	a := &r.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	key := types.NamespacedName{Namespace: exec.Namespace, Name: exec.Name}
	if a.started[key] {
		return "", nil
	}
	verdicts, limitOf, err := r.planNamespace(ctx, exec.Namespace, exec)
	if err != nil {
		return "", err
	}
	for _, v := range verdicts {
		switch {
		case v.name != exec.Name:
		case v.hold == heldByFunction:
			return fmt.Sprintf("waiting for a slot: function %s runs at most %d executions at once (its maxConcurrency)", v.function, limitOf(v.function)), nil
		case v.hold == heldByNamespace:
			return fmt.Sprintf("waiting for a slot: namespace %s runs at most %d executions at once (the operator's --max-running-per-namespace)", exec.Namespace, r.MaxRunningPerNamespace), nil
		}
	}
	if a.started == nil {
		a.started = map[types.NamespacedName]bool{}
	}
	a.started[key] = true
	return "", nil
}

// wakeWaiting requeues the waiting Executions of a namespace that have a
// slot now: called when one of its Executions finishes or goes.
func (r *ExecutionReconciler) wakeWaiting(ctx context.Context, namespace string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	a := &r.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	verdicts, _, err := r.planNamespace(ctx, namespace, nil)
	if err != nil {
		log.FromContext(ctx).Error(err, "planning the waiting executions", "namespace", namespace)
		return
	}
	for _, v := range verdicts {
		if v.hold == notHeld {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: v.name}})
		}
	}
}

// planNamespace plans the slots of a namespace from the cache: its
// unfinished Executions (with self, whatever the cache says of it), those
// with a Job counted running. It forgets the slots given that the cache now
// shows. The caller holds the mutex.
func (r *ExecutionReconciler) planNamespace(ctx context.Context, namespace string, self *fnv1.Execution) ([]verdict, func(string) int, error) {
	var execs fnv1.ExecutionList
	// Read only: the cache's objects are not copied.
	if err := r.List(ctx, &execs, client.InNamespace(namespace),
		client.MatchingFields{kube.UnfinishedExecutionField: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("listing the unfinished executions: %w", err)
	}
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("listing the jobs: %w", err)
	}
	hasJob := make(map[string]bool, len(jobs.Items))
	for _, j := range jobs.Items {
		hasJob[j.Name] = true
	}
	now := r.Clock.Now()
	live := make(map[string]bool, len(execs.Items))
	cands := make([]candidate, 0, len(execs.Items)+1)
	for i := range execs.Items {
		e := &execs.Items[i]
		live[e.Name] = true
		if e.Status.JobName != "" || hasJob[jobName(e.Name)] {
			delete(r.admission.started, types.NamespacedName{Namespace: namespace, Name: e.Name})
		}
		if c, ok := r.asCandidate(e, hasJob, now); ok {
			cands = append(cands, c)
		}
	}
	for key := range r.admission.started {
		if key.Namespace == namespace && !live[key.Name] {
			delete(r.admission.started, key) // finished or gone
		}
	}
	if self != nil && !live[self.Name] {
		c, _ := r.asCandidate(self, hasJob, now)
		cands = append(cands, c)
	}
	limitOf := r.limits(ctx, namespace)
	return planSlots(cands, r.MaxRunningPerNamespace, limitOf), limitOf, nil
}

// asCandidate is e as admission sees it; false for a delayed Execution
// that is not due, which queues only once due.
func (r *ExecutionReconciler) asCandidate(e *fnv1.Execution, hasJob map[string]bool, now time.Time) (candidate, bool) {
	key := types.NamespacedName{Namespace: e.Namespace, Name: e.Name}
	c := candidate{
		name: e.Name, function: e.Spec.FunctionName, queued: e.CreationTimestamp.Time,
		running: e.Status.JobName != "" || hasJob[jobName(e.Name)] || r.admission.started[key],
	}
	if at := e.Spec.ScheduledAt; at != nil && !c.running {
		if at.After(now) {
			return c, false
		}
		if at.After(c.queued) {
			c.queued = at.Time
		}
	}
	return c, true
}

// limits returns the maxConcurrency of each Function of namespace, read
// from the cache once, when first asked; the default for a Function that
// does not exist (yet).
func (r *ExecutionReconciler) limits(ctx context.Context, namespace string) func(string) int {
	var byName map[string]int
	return func(function string) int {
		if byName == nil {
			byName = map[string]int{}
			var fns fnv1.FunctionList
			if err := r.List(ctx, &fns, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
				log.FromContext(ctx).Error(err, "listing the functions; their default limit applies", "namespace", namespace)
			}
			for i := range fns.Items {
				byName[fns.Items[i].Name] = fns.Items[i].ConcurrencyLimit()
			}
		}
		if limit, ok := byName[function]; ok {
			return limit
		}
		return fnv1.DefaultMaxConcurrency
	}
}

// slotEvents wakes waiting Executions when one of the namespace's
// unfinished Executions finishes or is deleted: its slot, or its place in
// the queue, is free.
func (r *ExecutionReconciler) slotEvents() handler.TypedFuncs[client.Object, reconcile.Request] {
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !finished(e.ObjectOld) && finished(e.ObjectNew) {
				r.wakeWaiting(ctx, e.ObjectNew.GetNamespace(), q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !finished(e.Object) {
				r.wakeWaiting(ctx, e.Object.GetNamespace(), q)
			}
		},
	}
}

func finished(obj client.Object) bool {
	e, ok := obj.(*fnv1.Execution)
	return ok && e.Status.Status.IsFinished()
}
