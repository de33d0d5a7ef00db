package execindex

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// history is n executions of one function in creation order, a few per
// second, with facade IDs; every tenth failed, the others completed.
func history(n int) []*fnv1.Execution {
	out := make([]*fnv1.Execution, n)
	for i := range out {
		created := base.Add(time.Duration(i) * 300 * time.Millisecond)
		e := execution("ns", "fn", facadeID(created, fmt.Sprintf("%07x", i)), created)
		e.Status.Status, e.Status.StatusCode = fnv1.PhaseCompleted, 200
		if i%10 == 0 {
			e.Status.Status, e.Status.StatusCode = fnv1.PhaseFailed, 500
		}
		out[i] = e
	}
	return out
}

func indexed(es []*fnv1.Execution) *Index {
	ix := New()
	for _, e := range es {
		ix.OnAdd(e, true)
	}
	return ix
}

var sizes = []int{1000, 10000, 100000}

var failed = Filter{Statuses: []fnv1.ExecutionPhase{fnv1.PhaseFailed}}

// listPage is what the facade does for "status = failed, limit 25": a
// view, a count and a page.
func listPage(ix *Index, q Query, page []*fnv1.Execution) (int, []*fnv1.Execution) {
	v := ix.View("ns", "fn", "")
	total := v.Count(q.Filter)
	page = page[:0]
	_ = v.Walk(q, func(e *fnv1.Execution) bool {
		page = append(page, e)
		return len(page) < 25
	})
	return total, page
}

// BenchmarkWalkLimit25 lists a page of 25 failed executions (10% of them),
// newest first, from the middle of the history (a cursor) and from its
// start: the cost must not grow with the history.
func BenchmarkWalkLimit25(b *testing.B) {
	for _, n := range sizes {
		es := history(n)
		ix := indexed(es)
		for _, c := range []struct {
			name string
			q    Query
		}{
			{"newest", Query{Filter: failed, Desc: true}},
			{"cursor", Query{Filter: failed, Cursor: es[n/2].Name}},
			{"any", Query{Desc: true}},
		} {
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				page := make([]*fnv1.Execution, 0, 25)
				for b.Loop() {
					if total, p := listPage(ix, c.q, page); len(p) != 25 || total == 0 {
						b.Fatalf("got %d of %d", len(p), total)
					}
				}
			})
		}
	}
}

// BenchmarkWalkLimit25Parallel is the same page from 8 goroutines at once,
// as 8 concurrent clients would ask.
func BenchmarkWalkLimit25Parallel(b *testing.B) {
	for _, n := range sizes {
		ix := indexed(history(n))
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetParallelism(max(1, 8/testingProcs()))
			b.RunParallel(func(pb *testing.PB) {
				page := make([]*fnv1.Execution, 0, 25)
				for pb.Next() {
					listPage(ix, Query{Filter: failed, Desc: true}, page)
				}
			})
		})
	}
}

// benchGrowing runs step b.N times, for each size n, on an index already
// holding the first n executions of es; the b.N steps take es[n+i] in
// turn.
func benchGrowing(b *testing.B, step func(ix *Index, es []*fnv1.Execution, n, i int)) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			es := history(n + b.N)
			ix := indexed(es[:n])
			b.ResetTimer()
			for i := range b.N {
				step(ix, es, n, i)
			}
		})
	}
}

// BenchmarkOnAdd adds executions in creation order (the common case) to
// an index already holding n.
func BenchmarkOnAdd(b *testing.B) {
	benchGrowing(b, func(ix *Index, es []*fnv1.Execution, n, i int) {
		ix.OnAdd(es[n+i], false)
	})
}

// BenchmarkRetention is the steady state: each new execution is added
// and completes (two updates), and the oldest is deleted.
func BenchmarkRetention(b *testing.B) {
	benchGrowing(b, func(ix *Index, es []*fnv1.Execution, n, i int) {
		e := es[n+i]
		waiting := e.DeepCopy()
		waiting.Status = fnv1.ExecutionStatus{}
		processing := waiting.DeepCopy()
		processing.Status.Status = fnv1.PhaseProcessing
		ix.OnAdd(waiting, false)
		ix.OnUpdate(waiting, processing)
		ix.OnUpdate(processing, e)
		ix.OnDelete(es[i])
	})
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
