package execindex

import (
	"slices"
	"sync"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// Filter selects executions by status and trigger, as the facade reads
// them: no trigger is "http"; no status yet is "waiting", or "scheduled"
// when spec.scheduledAt is set. A nil list matches any value, an empty one
// none.
type Filter struct {
	Statuses []fnv1.ExecutionPhase
	Triggers []fnv1.Trigger
	// Report4xxAsFailed reads a completed execution whose response is 4xx
	// as failed, as formats 1.4 and 1.5 report (and filter) it.
	Report4xxAsFailed bool
}

func (f Filter) matches(c class) bool {
	status := c.status
	if c.clientError && f.Report4xxAsFailed {
		status = fnv1.PhaseFailed
	}
	return (f.Statuses == nil || slices.Contains(f.Statuses, status)) &&
		(f.Triggers == nil || slices.Contains(f.Triggers, c.trigger))
}

// Query is a walk of the executions a Filter selects.
type Query struct {
	Filter
	// Desc walks newest first: the exact reverse of the default order, so
	// executions created in the same instant come in descending name order
	// (the facade's orderDesc("$createdAt") breaks such ties by ascending
	// name; they are rare with facade IDs, which carry microseconds).
	Desc bool
	// Cursor, an execution's name, starts the walk strictly beyond that
	// execution in walk order; it need not match the filter. For Appwrite's
	// cursorBefore, walk the other way from it and reverse the page.
	Cursor string
}

// View is one version of one function's executions: a count and a walk of
// the same View agree, whatever the informer does meanwhile. It is cheap
// (no copy) and may be used by several goroutines.
type View struct {
	ix        *Index
	g         *group
	namespace string
	function  string
	user      string
}

// View returns the current executions of a function. With a user, only
// those that user created (spec.userID), as a user session sees them;
// with "", all of them.
func (ix *Index) View(namespace, function, user string) View {
	ix.mu.RLock()
	g := ix.groups[groupKey{namespace, function, user}]
	ix.mu.RUnlock()
	return View{ix: ix, g: g, namespace: namespace, function: function, user: user}
}

// Len is the number of executions in the view.
func (v View) Len() int {
	if v.g == nil {
		return 0
	}
	return v.g.n
}

// Count is the number of executions f selects, from the partitions' sizes:
// O(number of partitions), whatever their sizes.
func (v View) Count(f Filter) int {
	n := 0
	if v.g != nil {
		for _, p := range v.g.parts {
			if f.matches(p.class) {
				n += p.tree.Len()
			}
		}
	}
	return n
}

// Walk calls visit with the executions q selects, in order, until visit
// returns false. It costs O(log n) to start and O(1) amortized per matching
// execution, never touching executions q does not select. When q selects
// several partitions (at most a dozen or so), it merges them, reading each
// in small batches: O(log n) per partition to start, and a few executions
// read beyond the last one visited. The executions are the informer's
// objects: read them, never change them. An unknown cursor returns
// ErrCursorNotFound.
func (v View) Walk(q Query, visit func(*fnv1.Execution) bool) error {
	var from *key
	if q.Cursor != "" {
		k, ok := v.cursor(q.Cursor)
		if !ok {
			return ErrCursorNotFound
		}
		from = &k
	}
	if v.g == nil {
		return nil
	}
	var only *tree
	k := 0
	for _, p := range v.g.parts {
		if q.matches(p.class) {
			only, k = p.tree, k+1
		}
	}
	switch k {
	case 0:
		return nil
	case 1: // nothing to merge
		scan(only, from, q.Desc, func(x entry) bool { return visit(x.e) })
		return nil
	}
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	srcs := sc.reserve(k)
	for _, p := range v.g.parts {
		if !q.matches(p.class) {
			continue
		}
		at := len(srcs) * maxBatch
		s := source{tree: p.tree, buf: sc.entries[at : at : at+maxBatch], size: firstBatch}
		if s.fill(from, q.Desc); len(s.buf) > 0 {
			srcs = append(srcs, s)
		}
	}
	for len(srcs) > 0 {
		i := first(srcs, q.Desc)
		s := &srcs[i]
		if !visit(s.buf[s.at].e) {
			return nil
		}
		if s.at++; s.at == len(s.buf) && s.more {
			last := s.buf[s.at-1].key
			s.fill(&last, q.Desc)
		}
		if s.at == len(s.buf) {
			srcs = slices.Delete(srcs, i, i+1)
		}
	}
	return nil
}

// scan calls fn with t's entries in walk order, starting strictly beyond
// from (or at the first entry when from is nil), until fn returns false.
func scan(t *tree, from *key, desc bool, fn func(entry) bool) {
	switch {
	case from == nil && desc:
		t.Descend(fn)
	case from == nil:
		t.Ascend(fn)
	case desc:
		t.DescendLessOrEqual(entry{key: *from}, func(x entry) bool { return x.key == *from || fn(x) })
	default:
		t.AscendGreaterOrEqual(entry{key: *from}, func(x entry) bool { return x.key == *from || fn(x) })
	}
}

// source is one partition of a merged walk: the next batch of its entries
// in walk order, from at.
type source struct {
	tree *tree
	buf  []entry // of capacity maxBatch
	at   int
	// size is the size of the next batch.
	size int
	// more is whether the tree may hold entries beyond buf.
	more bool
}

// A merged walk reads a partition in batches, each twice as large as the
// one before: a walk usually stops after a page, and pages are small, so
// it reads little that it does not visit, while a long walk still reads
// each partition in O(log n) seeks per maxBatch entries.
const (
	firstBatch = 16
	maxBatch   = 64
)

// fill reads the next batch of s's entries strictly beyond from.
func (s *source) fill(from *key, desc bool) {
	s.buf, s.at = s.buf[:0], 0
	scan(s.tree, from, desc, func(x entry) bool {
		s.buf = append(s.buf, x)
		return len(s.buf) < s.size
	})
	s.more = len(s.buf) == s.size
	s.size = min(2*s.size, cap(s.buf))
}

// scratch is the memory of one merged walk, reused: a walk that allocates
// adds garbage collection work, which scans the whole index, on every
// request.
type scratch struct {
	entries []entry
	srcs    []source
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// reserve returns room for the sources of k partitions.
func (sc *scratch) reserve(k int) []source {
	if cap(sc.srcs) < k {
		sc.entries, sc.srcs = make([]entry, maxBatch*k), make([]source, 0, k)
	}
	return sc.srcs[:0]
}

// release returns sc to the pool, without the entries and trees it saw:
// the pool must not keep old versions of the index alive.
func (sc *scratch) release() {
	clear(sc.entries)
	clear(sc.srcs[:cap(sc.srcs)])
	scratchPool.Put(sc)
}

// first is the source whose next entry comes first in walk order.
func first(srcs []source, desc bool) int {
	best := 0
	for i := 1; i < len(srcs); i++ {
		c := srcs[i].buf[srcs[i].at].key.compare(srcs[best].buf[srcs[best].at].key)
		if (c < 0) != desc {
			best = i
		}
	}
	return best
}

// cursor is the position of the named execution, if it is one of the
// view's. It reads the Index's current objects, not the view's version: a
// key never changes, so either gives the same position.
func (v View) cursor(name string) (key, bool) {
	e, ok := v.ix.Get(v.namespace, name)
	if !ok || e.Spec.FunctionName != v.function || (v.user != "" && e.Spec.UserID != v.user) {
		return key{}, false
	}
	return keyOf(e), true
}
