package apiserver

import (
	"errors"
	"slices"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/execindex"
)

// listPage answers a list plan from the index, with the caller's view of
// the function's executions: the index's objects, read-only, some of them
// stripped of their outputs.
//
// The common lists (equal filters on status and trigger, the default or
// $createdAt order) walk only the matching partitions from the cursor, up
// to offset+limit, and count from the partitions' sizes: their cost does
// not grow with the history. Any other list reads the caller's executions
// through the attribute table, without copying them.
func (s *Server) listPage(r request, fn *fnv1.Function, p listPlan) (int, []*fnv1.Execution, *apiError) {
	if r.caller.kind == guest {
		// Guests see no execution (and have no read scope): answer as for
		// an empty function.
		total, _, aerr := p.run(func(func(record) bool) {}, func(string) (record, bool) { return record{}, false })
		return total, nil, aerr
	}
	user := r.caller.userID
	if r.caller.kind == apiKey {
		user = ""
	}
	v := s.index.View(r.project, fn.Name, user)
	if q, tiesAsc, ok := p.indexQuery(); ok {
		return s.walkIndexed(v, r.project, p, q, tiesAsc)
	}
	return scan(v, p, functionAppwriteID(fn), func(id string) (record, bool) { return s.liveCursor(r, fn, id) })
}

// liveCursor is the cursor's record among the objects of fn the caller
// sees.
func (s *Server) liveCursor(r request, fn *fnv1.Function, id string) (record, bool) {
	e, ok := s.index.Get(r.project, id)
	if !ok || e.Spec.FunctionName != fn.Name || !r.caller.canSee(e.Spec.UserID) {
		return record{}, false
	}
	rec := summarize(e)
	rec.FunctionID = functionAppwriteID(fn)
	return rec, true
}

// indexQuery is the index walk that answers the plan, if one does: filters
// equal on status and trigger only, no search, and the default order,
// orderAsc/orderDesc on $createdAt, or orderAsc/orderDesc("") (1.0: the
// default order). tiesAsc is orderDesc("$createdAt"), which keeps ties in
// ascending ID order, as Appwrite does, where the index walks them in
// descending order.
func (p listPlan) indexQuery() (q execindex.Query, tiesAsc, ok bool) {
	if len(p.search) > 0 || len(p.orders) > 1 {
		return q, false, false
	}
	if q.Filter, ok = p.indexFilter(); !ok {
		return q, false, false
	}
	if len(p.orders) == 1 {
		o := p.orders[0]
		if o.Attribute != "" && o.Attribute != "$createdAt" {
			return q, false, false
		}
		q.Desc = o.Method == qOrderDesc
		tiesAsc = q.Desc && o.Attribute != ""
	}
	return q, tiesAsc, true
}

// indexFilter is the plan's equal filters on status and trigger as an
// index Filter (several on one attribute all hold); exact tells whether
// they are all of its filters.
func (p listPlan) indexFilter() (f execindex.Filter, exact bool) {
	f.Report4xxAsFailed = p.f.atLeast(v1_4) && !p.f.atLeast(v1_6)
	exact = true
	for _, q := range p.filters {
		switch {
		case q.Method == qEqual && q.Attribute == "status":
			f.Statuses = narrowTo(f.Statuses, q.Values)
		case q.Method == qEqual && q.Attribute == "trigger":
			f.Triggers = narrowTo(f.Triggers, q.Values)
		default:
			exact = false
		}
	}
	return f, exact
}

// narrowTo is the values of have (all values when have is nil) that are
// among values; empty, not nil, when none is.
func narrowTo[T ~string](have []T, values []any) []T {
	out := []T{}
	for _, v := range values {
		s, _ := v.(string)
		if t := T(s); (have == nil || slices.Contains(have, t)) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// walkIndexed answers a plan with an index walk: offset then limit
// executions from the cursor (walking back from a cursorBefore, then
// reversing the page), and the count of the matching partitions.
func (s *Server) walkIndexed(v execindex.View, namespace string, p listPlan, q execindex.Query, tiesAsc bool) (int, []*fnv1.Execution, *apiError) {
	total := 0
	if p.countTotal {
		total = min(v.Count(q.Filter), maxTotal)
	}
	pg := pageOf{skip: p.offset, limit: p.limit}
	back := p.cursor != nil && p.cursor.Method == qCursorBefore
	var cursorAt *time.Time
	if p.cursor != nil {
		q.Cursor = p.cursor.Values[0].(string)
		q.Desc = q.Desc != back
		if e, ok := s.index.Get(namespace, q.Cursor); ok {
			t := execindex.CreatedAt(e)
			cursorAt = &t
		}
	}
	var err error
	if tiesAsc {
		err = walkTiesFlipped(v, q, cursorAt, pg.add)
	} else {
		err = v.Walk(q, pg.add)
	}
	if errors.Is(err, execindex.ErrCursorNotFound) {
		return 0, nil, cursorNotFound(q.Cursor)
	}
	if back {
		slices.Reverse(pg.items)
	}
	return total, pg.items, nil
}

// pageOf collects a page from a walk: it skips, then keeps, then stops it.
type pageOf struct {
	skip, limit int
	items       []*fnv1.Execution
}

func (pg *pageOf) add(e *fnv1.Execution) bool {
	if len(pg.items) >= pg.limit {
		return false
	}
	if pg.skip > 0 {
		pg.skip--
		return true
	}
	pg.items = append(pg.items, e)
	return len(pg.items) < pg.limit
}

// walkTiesFlipped walks like View.Walk, but visits each run of executions
// created in the same instant in the opposite order. After a cursor the
// rest of the cursor's run comes first: it lies the other way in the
// index. A run is read whole before it is visited, so a walk costs the
// length of the runs it touches; runs are short, since IDs the facade
// makes carry microseconds.
func walkTiesFlipped(v execindex.View, q execindex.Query, cursorAt *time.Time, visit func(*fnv1.Execution) bool) error {
	stopped := false
	if cursorAt != nil {
		rest := q
		rest.Desc = !q.Desc
		err := v.Walk(rest, func(e *fnv1.Execution) bool {
			if !execindex.CreatedAt(e).Equal(*cursorAt) {
				return false
			}
			stopped = !visit(e)
			return !stopped
		})
		if err != nil || stopped {
			return err
		}
	}
	var run []*fnv1.Execution
	flush := func() bool {
		for i := len(run) - 1; i >= 0; i-- {
			if !visit(run[i]) {
				return false
			}
		}
		run = run[:0]
		return true
	}
	err := v.Walk(q, func(e *fnv1.Execution) bool {
		at := execindex.CreatedAt(e)
		if cursorAt != nil && at.Equal(*cursorAt) {
			return true // the cursor's run, visited above
		}
		if len(run) > 0 && !at.Equal(execindex.CreatedAt(run[0])) && !flush() {
			stopped = true
			return false
		}
		run = append(run, e)
		return true
	})
	if err == nil && !stopped {
		flush()
	}
	return err
}

// scan answers any plan by reading each execution of the view through
// the attribute table; only the page is kept. appwriteID is the
// function's, which search matches; cursor finds the cursor's record.
func scan(v execindex.View, p listPlan, appwriteID string, cursor func(id string) (record, bool)) (int, []*fnv1.Execution, *apiError) {
	narrow, _ := p.indexFilter() // only the partitions the filters may match
	summary := func(e *fnv1.Execution) record {
		rec := summarize(e)
		rec.FunctionID = appwriteID
		return rec
	}
	all := func(yield func(record) bool) {
		_ = v.Walk(execindex.Query{Filter: narrow}, func(e *fnv1.Execution) bool { return yield(summary(e)) })
	}
	total, recs, aerr := p.run(all, cursor)
	if aerr != nil {
		return 0, nil, aerr
	}
	page := make([]*fnv1.Execution, len(recs))
	for i, rec := range recs {
		page[i] = rec.src
	}
	return total, page, nil
}
