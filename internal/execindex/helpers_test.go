package execindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	phases   = []fnv1.ExecutionPhase{"", fnv1.PhaseScheduled, fnv1.PhaseWaiting, fnv1.PhaseProcessing, fnv1.PhaseCompleted, fnv1.PhaseFailed}
	triggers = []fnv1.Trigger{"", fnv1.TriggerHTTP, fnv1.TriggerSchedule, fnv1.TriggerEvent}
	codes    = []int32{0, 200, 204, 400, 404, 499, 500, 503}
)

// facadeID is an ID as the facade's NewID makes it.
func facadeID(t time.Time, rnd string) string {
	return fmt.Sprintf("%08x%05x%s", t.Unix(), t.Nanosecond()/1000, rnd)
}

// execution is a new Execution; base is the start of the creation times.
func execution(ns, fn, name string, created time.Time) *fnv1.Execution {
	e := &fnv1.Execution{}
	e.Namespace, e.Name = ns, name
	e.CreationTimestamp = metav1.NewTime(created.Truncate(time.Second))
	e.Spec.FunctionName = fn
	return e
}

// randomExecution has a random name (facade-made or not), creation time
// (many in one second, to exercise ties) and state.
func randomExecution(r *rand.Rand, ns, fn string, base time.Time) *fnv1.Execution {
	created := base.Add(time.Duration(r.IntN(4000)) * time.Millisecond).Add(time.Duration(r.IntN(1000)) * time.Microsecond)
	var name string
	switch r.IntN(4) {
	case 0: // a facade ID
		name = facadeID(created, fmt.Sprintf("%07x", r.IntN(1<<28)))
	case 1: // a facade-like ID whose seconds disagree with the timestamp
		name = facadeID(created.Add(-time.Hour), fmt.Sprintf("%07x", r.IntN(1<<28)))
	default: // made by kubectl or a controller
		name = fmt.Sprintf("run-%d", r.IntN(1000))
	}
	e := execution(ns, fn, name, created)
	randomize(r, e)
	return e
}

// randomize sets what may change during an execution's life (and, to test
// robustness, what may not).
func randomize(r *rand.Rand, e *fnv1.Execution) {
	e.Status.Status = phases[r.IntN(len(phases))]
	e.Status.StatusCode = codes[r.IntN(len(codes))]
	e.Spec.Trigger = triggers[r.IntN(len(triggers))]
	e.Spec.ScheduledAt = nil
	if r.IntN(3) == 0 {
		at := metav1.NewTime(e.CreationTimestamp.Add(time.Hour))
		e.Spec.ScheduledAt = &at
	}
	e.Spec.UserID = []string{"", "", "alice", "bob"}[r.IntN(4)]
}

func randomFilter(r *rand.Rand) Filter {
	var f Filter
	if r.IntN(3) > 0 {
		f.Statuses = []fnv1.ExecutionPhase{}
		for _, p := range phases[1:] {
			if r.IntN(3) == 0 {
				f.Statuses = append(f.Statuses, p)
			}
		}
	}
	if r.IntN(2) == 0 {
		f.Triggers = []fnv1.Trigger{}
		for _, t := range triggers[1:] {
			if r.IntN(2) == 0 {
				f.Triggers = append(f.Triggers, t)
			}
		}
	}
	f.Report4xxAsFailed = r.IntN(2) == 0
	return f
}

// model is the brute-force reference: the facade's list done the slow way.
type model struct {
	objs map[objectKey]*fnv1.Execution
	keys []objectKey // sorted, for a reproducible random pick
}

func newModel() *model { return &model{objs: map[objectKey]*fnv1.Execution{}} }

func compareKeys(a, b objectKey) int {
	if c := compareStrings(a.namespace, b.namespace); c != 0 {
		return c
	}
	return compareStrings(a.name, b.name)
}

func (m *model) set(e *fnv1.Execution) {
	k := objectKey{e.Namespace, e.Name}
	if i, found := slices.BinarySearchFunc(m.keys, k, compareKeys); !found {
		m.keys = slices.Insert(m.keys, i, k)
	}
	m.objs[k] = e
}

func (m *model) delete(e *fnv1.Execution) {
	k := objectKey{e.Namespace, e.Name}
	if i, found := slices.BinarySearchFunc(m.keys, k, compareKeys); found {
		m.keys = slices.Delete(m.keys, i, i+1)
	}
	delete(m.objs, k)
}

// random is a random indexed execution, or nil.
func (m *model) random(r *rand.Rand) *fnv1.Execution {
	if len(m.keys) == 0 {
		return nil
	}
	return m.objs[m.keys[r.IntN(len(m.keys))]]
}

// reportedStatus and reportedTrigger repeat apiserver's toRecord and
// reportedStatus rules, independently of classOf.
func reportedStatus(e *fnv1.Execution, fourXXFails bool) fnv1.ExecutionPhase {
	s := e.Status.Status
	switch {
	case s == "" && e.Spec.ScheduledAt != nil:
		return fnv1.PhaseScheduled
	case s == "":
		return fnv1.PhaseWaiting
	case fourXXFails && s == fnv1.PhaseCompleted && e.Status.StatusCode >= 400 && e.Status.StatusCode < 500:
		return fnv1.PhaseFailed
	}
	return s
}

func reportedTrigger(e *fnv1.Execution) fnv1.Trigger {
	if e.Spec.Trigger == "" {
		return fnv1.TriggerHTTP
	}
	return e.Spec.Trigger
}

// visible is what a view of (ns, fn, user) holds, in default order.
func (m *model) visible(ns, fn, user string) []*fnv1.Execution {
	var out []*fnv1.Execution
	for _, e := range m.objs {
		if e.Namespace == ns && e.Spec.FunctionName == fn && (user == "" || e.Spec.UserID == user) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *fnv1.Execution) int {
		if c := CreatedAt(a).Compare(CreatedAt(b)); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *model) query(ns, fn, user string, q Query) ([]*fnv1.Execution, error) {
	all := m.visible(ns, fn, user)
	if q.Desc {
		slices.Reverse(all)
	}
	if q.Cursor != "" {
		i := slices.IndexFunc(all, func(e *fnv1.Execution) bool { return e.Name == q.Cursor })
		if i < 0 {
			return nil, ErrCursorNotFound
		}
		all = all[i+1:]
	}
	var out []*fnv1.Execution
	for _, e := range all {
		if selects(q.Filter, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func selects(f Filter, e *fnv1.Execution) bool {
	return (f.Statuses == nil || slices.Contains(f.Statuses, reportedStatus(e, f.Report4xxAsFailed))) &&
		(f.Triggers == nil || slices.Contains(f.Triggers, reportedTrigger(e)))
}

// walk collects up to limit executions (all when limit is 0).
func walk(v View, q Query, limit int) ([]*fnv1.Execution, error) {
	var out []*fnv1.Execution
	err := v.Walk(q, func(e *fnv1.Execution) bool {
		out = append(out, e)
		return limit == 0 || len(out) < limit
	})
	return out, err
}
