package execindex

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
)

func TestCreatedAt(t *testing.T) {
	sec := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	fine := sec.Add(123456 * time.Microsecond)
	secs := fmt.Sprintf("%08x", sec.Unix())
	cases := []struct {
		name string
		want time.Time
	}{
		{facadeID(fine, "abcdef0"), fine},                 // facade ID, same second: the finer time
		{facadeID(fine.Add(time.Second), "abcdef0"), sec}, // another second: the timestamp
		{"run-1", sec},                    // not an ID
		{facadeID(fine, "abcdef01"), sec}, // 21 characters
		{secs + "1e2z0abcdef0", sec},      // not hex
		{secs + "f4240abcdef0", sec},      // a million microseconds
	}
	for _, c := range cases {
		if got := CreatedAt(execution("ns", "fn", c.name, sec)); !got.Equal(c.want) {
			t.Errorf("CreatedAt(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		ix, m := New(), newModel()
		var made, copies []*fnv1.Execution
		for step := 0; step < 600; step++ {
			if e := applyRandom(r, ix, m); e != nil {
				made, copies = append(made, e), append(copies, e.DeepCopy())
			}
			if step%10 == 0 {
				compare(t, r, ix, m)
			}
		}
		compare(t, r, ix, m)
		for i := range made {
			if !equality.Semantic.DeepEqual(made[i], copies[i]) {
				t.Fatalf("seed %d: the index changed %s", seed, made[i].Name)
			}
		}
	}
}

var base = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// applyRandom sends one random informer event to ix and m. It returns the
// object it made, if any.
func applyRandom(r *rand.Rand, ix *Index, m *model) *fnv1.Execution {
	ns, fn := []string{"p1", "p2"}[r.IntN(2)], []string{"a", "b", "c"}[r.IntN(3)]
	old := m.random(r)
	switch op := r.IntN(10); {
	case op < 4 || old == nil: // add (possibly replacing an execution of that name)
		e := randomExecution(r, ns, fn, base)
		ix.OnAdd(e, r.IntN(2) == 0)
		m.set(e)
		return e
	case op < 7: // update: state changes; rarely the function too
		e := old.DeepCopy()
		randomize(r, e)
		if r.IntN(10) == 0 {
			e.Spec.FunctionName = fn
		}
		ix.OnUpdate(old, e)
		m.set(e)
		return e
	case op == 7: // resync
		ix.OnUpdate(old, old)
	case op == 8: // delete, one way or another
		deleteRandom(r, ix, old)
		m.delete(old)
	default: // delete of something never indexed
		ix.OnDelete(execution(ns, fn, "never", base))
		ix.OnDelete(cache.DeletedFinalStateUnknown{Key: ns + "/never"})
		ix.OnDelete(cache.DeletedFinalStateUnknown{Key: "bad/key/x"})
		ix.OnDelete("not an execution")
	}
	return nil
}

func deleteRandom(r *rand.Rand, ix *Index, old *fnv1.Execution) {
	stale := old.DeepCopy()
	randomize(r, stale)
	switch r.IntN(4) {
	case 0:
		ix.OnDelete(old)
	case 1: // the last state the informer saw is older than ours
		ix.OnDelete(stale)
	case 2:
		ix.OnDelete(cache.DeletedFinalStateUnknown{Key: old.Namespace + "/" + old.Name, Obj: stale})
	default:
		ix.OnDelete(&cache.DeletedFinalStateUnknown{Key: old.Namespace + "/" + old.Name})
	}
}

// compare checks every view and random queries of ix against m.
func compare(t *testing.T, r *rand.Rand, ix *Index, m *model) {
	t.Helper()
	if ix.Len() != len(m.objs) {
		t.Fatalf("Len() = %d, want %d", ix.Len(), len(m.objs))
	}
	for k, e := range m.objs {
		if got, ok := ix.Get(k.namespace, k.name); !ok || got != e {
			t.Fatalf("Get(%v) = %v, %v: not the latest object", k, got, ok)
		}
	}
	for _, ns := range []string{"p1", "p2", "p3"} {
		for _, fn := range []string{"a", "b", "c"} {
			for _, user := range []string{"", "alice", "bob"} {
				compareView(t, r, ix.View(ns, fn, user), m, ns, fn, user)
			}
		}
	}
}

func compareView(t *testing.T, r *rand.Rand, v View, m *model, ns, fn, user string) {
	t.Helper()
	all := m.visible(ns, fn, user)
	if v.Len() != len(all) {
		t.Fatalf("%s/%s/%s: Len() = %d, want %d", ns, fn, user, v.Len(), len(all))
	}
	for range 8 {
		q := Query{Filter: randomFilter(r), Desc: r.IntN(2) == 0}
		switch {
		case r.IntN(3) == 0 && len(all) > 0:
			q.Cursor = all[r.IntN(len(all))].Name
		case r.IntN(8) == 0 && len(m.objs) > 0:
			q.Cursor = m.random(r).Name // maybe another function's or user's
		}
		limit := []int{0, 1, 3, 25}[r.IntN(4)]
		want, wantErr := m.query(ns, fn, user, q)
		got, err := walk(v, q, limit)
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s/%s/%s %+v: error %v, want %v", ns, fn, user, q, err, wantErr)
		}
		if limit > 0 && len(want) > limit {
			want = want[:limit]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s/%s/%s %+v limit %d:\n got %v\nwant %v", ns, fn, user, q, limit, names(got), names(want))
		}
		q.Cursor = ""
		if n, _ := m.query(ns, fn, user, q); v.Count(q.Filter) != len(n) {
			t.Fatalf("%s/%s/%s: Count(%+v) = %d, want %d", ns, fn, user, q.Filter, v.Count(q.Filter), len(n))
		}
	}
}

func names(es []*fnv1.Execution) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

// TestOrder pins the default order on a small case: ties in the second are
// broken by the finer time of facade IDs, then by name.
func TestOrder(t *testing.T) {
	sec := base
	ix := New()
	early := execution("ns", "fn", facadeID(sec.Add(time.Millisecond), "0000000"), sec)
	late := execution("ns", "fn", facadeID(sec.Add(900*time.Millisecond), "0000000"), sec)
	plainA := execution("ns", "fn", "a-run", sec)
	plainZ := execution("ns", "fn", "z-run", sec)
	next := execution("ns", "fn", "0-run", sec.Add(time.Second))
	for _, e := range []*fnv1.Execution{next, plainZ, late, plainA, early} { // out of order
		ix.OnAdd(e, true)
	}
	got, _ := walk(ix.View("ns", "fn", ""), Query{}, 0)
	want := []*fnv1.Execution{plainA, plainZ, early, late, next}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", names(got), names(want))
	}
	got, _ = walk(ix.View("ns", "fn", ""), Query{Desc: true, Cursor: late.Name}, 2)
	if want := []*fnv1.Execution{early, plainZ}; !slices.Equal(got, want) {
		t.Fatalf("desc from cursor %v, want %v", names(got), names(want))
	}
}

// TestEmptyGroupsAreDropped checks that deleting a function's executions
// leaves nothing behind.
func TestEmptyGroupsAreDropped(t *testing.T) {
	ix := New()
	e := execution("ns", "fn", "run", base)
	e.Spec.UserID = "alice"
	ix.OnAdd(e, false)
	ix.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/run"})
	if len(ix.groups) != 0 || ix.Len() != 0 {
		t.Fatalf("left %d groups, %d executions", len(ix.groups), ix.Len())
	}
	if err := ix.View("ns", "fn", "").Walk(Query{Cursor: "run"}, nil); !errors.Is(err, ErrCursorNotFound) {
		t.Fatalf("walk from a deleted cursor: %v", err)
	}
}
