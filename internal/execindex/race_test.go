package execindex

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// TestConcurrentReaders runs one writer (the informer) against readers
// that check every view they take is a consistent version: in order,
// filtered, and as long as its count says. Run it with -race.
func TestConcurrentReaders(t *testing.T) {
	ix := New()
	var done atomic.Bool
	var views atomic.Int64
	var wg sync.WaitGroup
	for reader := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(reader), 1))
			for !done.Load() {
				if err := checkRandomView(r, ix); err != nil {
					t.Error(err)
					return
				}
				views.Add(1)
			}
		})
	}
	r, m := rand.New(rand.NewPCG(99, 1)), newModel()
	for range 5000 {
		applyRandom(r, ix, m)
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d views checked during 5000 writes", views.Load())
	if ix.Len() != len(m.objs) {
		t.Fatalf("Len() = %d, want %d", ix.Len(), len(m.objs))
	}
}

func checkRandomView(r *rand.Rand, ix *Index) error {
	ns, fn := []string{"p1", "p2"}[r.IntN(2)], []string{"a", "b", "c"}[r.IntN(3)]
	user := []string{"", "alice"}[r.IntN(2)]
	v, f := ix.View(ns, fn, user), randomFilter(r)
	q := Query{Filter: f, Desc: r.IntN(2) == 0}
	var prev *fnv1.Execution
	var bad error
	n := 0
	err := v.Walk(q, func(e *fnv1.Execution) bool {
		if e.Namespace != ns || e.Spec.FunctionName != fn || (user != "" && e.Spec.UserID != user) || !selects(f, e) {
			bad = fmt.Errorf("walk of %s/%s/%s %+v visited %s", ns, fn, user, f, e.Name)
		}
		if prev != nil && (keyOf(prev).compare(keyOf(e)) < 0) == q.Desc {
			bad = fmt.Errorf("walk out of order: %s then %s", prev.Name, e.Name)
		}
		prev, n = e, n+1
		return bad == nil
	})
	switch {
	case bad != nil:
		return bad
	case err != nil || n != v.Count(f):
		return fmt.Errorf("a view's walk (%d, %v) and count (%d) disagree", n, err, v.Count(f))
	}
	if prev != nil { // a cursor query on the current version
		_, _ = ix.Get(ns, prev.Name)
		err := ix.View(ns, fn, user).Walk(Query{Filter: f, Cursor: prev.Name}, func(*fnv1.Execution) bool { return false })
		if err != nil && !errors.Is(err, ErrCursorNotFound) {
			return err
		}
	}
	return nil
}
