// Package execindex keeps the Executions of each Function in the facade's
// list order, so that a list request costs O(log n + page) instead of
// O(stored history).
//
// The facade's list endpoint used to deep-copy every Execution of a
// function out of the informer cache, then filter, sort and count them on
// every request: its cost grew with the retained history (about 4 µs per
// record per request). The Index is fed by the same informer (it is a
// cache.ResourceEventHandler) and holds pointers to the informer's own
// objects: it never copies them, and neither it nor its callers may change
// them.
//
// Per function it keeps one B-tree (github.com/google/btree) per partition
// of executions (status, trigger, 4xx response), each in the default order:
// creation time (CreatedAt) ascending, then name. A filtered walk merges
// only the matching partitions, and a filtered count adds their sizes.
// Executions a user created are also kept in a second set of partitions for
// that user, since a user session may list only its own executions.
//
// Writers (informer handlers) are serialized; readers take a read lock only
// to find a function's current version, then walk it without locks while
// writers publish newer versions. A writer changes its own copy of a
// partition's tree and publishes a lazy Clone of it: the clone shares the
// tree's nodes, which neither side changes again (each copies the nodes it
// writes), so a write copies O(log n) nodes and a published tree is never
// written.
package execindex

import (
	"errors"
	"slices"
	"sync"

	"github.com/google/btree"
	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"k8s.io/client-go/tools/cache"
)

// ErrCursorNotFound is returned by a walk whose cursor names no execution
// of the view's function (visible to the view's user).
var ErrCursorNotFound = errors.New("cursor execution not found")

// Index is an in-memory index of Executions by function, in list order.
// The zero value is not usable: call New.
type Index struct {
	// mu guards the maps. Writers hold it while they update; readers hold
	// it only to look up a map entry, never while they walk.
	mu sync.RWMutex
	// byName holds the object each execution was indexed as: deleting or
	// replacing it needs the partitions that object was filed under.
	byName map[objectKey]*fnv1.Execution
	groups map[groupKey]*group
	// free recycles the tree nodes writes free, for all the trees. Only
	// writers use it: a node is freed only by the write that made it.
	free *btree.FreeListG[entry]
}

type objectKey struct{ namespace, name string }

// groupKey names the executions of one function, all of them (user "") or
// only those one user created.
type groupKey struct{ namespace, function, user string }

// group is an immutable version of one groupKey's executions.
type group struct {
	parts []part // in compareClass order
	n     int
}

// part is the partition of a group's executions of one class.
type part struct {
	class class
	// tree is this version's: it is never written, and readers walk it
	// without locks.
	tree *tree
	// draft is the writer's own tree, shared by all the versions of the
	// part: the next write changes it, then publishes a Clone of it as the
	// next version's tree. Readers never touch it.
	draft *tree
}

// tree holds executions in the default order.
type tree = btree.BTreeG[entry]

type entry struct {
	key key
	e   *fnv1.Execution
}

func less(a, b entry) bool { return a.key.compare(b.key) < 0 }

// degree makes nodes of 7 to 15 entries: a write copies the nodes on its
// path (the clone it published shares them), so small nodes keep writes
// cheap, while a seek among 100,000 entries still visits at most six
// levels.
const degree = 8

var _ cache.ResourceEventHandler = (*Index)(nil)

// New returns an empty Index. Register it on the Execution informer with
// AddEventHandler; it is complete once that registration HasSynced.
func New() *Index {
	return &Index{
		byName: map[objectKey]*fnv1.Execution{},
		groups: map[groupKey]*group{},
		free:   btree.NewFreeListG[entry](btree.DefaultFreeListSize),
	}
}

// OnAdd indexes an added Execution; one already indexed under its name is
// replaced, so a repeated or out-of-order add is harmless.
func (ix *Index) OnAdd(obj any, _ bool) {
	if e, ok := obj.(*fnv1.Execution); ok {
		ix.put(e)
	}
}

// OnUpdate indexes newObj in place of whatever is indexed under its name:
// oldObj is not trusted, since events may have been missed.
func (ix *Index) OnUpdate(_, newObj any) {
	if e, ok := newObj.(*fnv1.Execution); ok {
		ix.put(e)
	}
}

// OnDelete forgets an Execution, also when the informer only knows its key
// (DeletedFinalStateUnknown). Deleting an unknown execution does nothing.
func (ix *Index) OnDelete(obj any) {
	switch o := obj.(type) {
	case *fnv1.Execution:
		ix.drop(objectKey{o.Namespace, o.Name})
	case cache.DeletedFinalStateUnknown:
		if ns, name, err := cache.SplitMetaNamespaceKey(o.Key); err == nil {
			ix.drop(objectKey{ns, name})
		}
	case *cache.DeletedFinalStateUnknown:
		if ns, name, err := cache.SplitMetaNamespaceKey(o.Key); err == nil {
			ix.drop(objectKey{ns, name})
		}
	}
}

// Get returns the indexed Execution of that name. It is the informer's
// object: read it, never change it.
func (ix *Index) Get(namespace, name string) (*fnv1.Execution, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e, ok := ix.byName[objectKey{namespace, name}]
	return e, ok
}

// Len is the number of indexed Executions.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byName)
}

func (ix *Index) put(e *fnv1.Execution) {
	k := objectKey{e.Namespace, e.Name}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, ok := ix.byName[k]
	if ok && old == e {
		return // a resync: nothing changed
	}
	if ok {
		ix.unfile(old)
	}
	ix.byName[k] = e
	ix.file(e)
}

func (ix *Index) drop(k objectKey) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.byName[k]; ok {
		delete(ix.byName, k)
		ix.unfile(old)
	}
}

// groupsOf are the groups an execution belongs to: its function's, and its
// user's within that function when a user created it.
func groupsOf(e *fnv1.Execution) []groupKey {
	all := groupKey{e.Namespace, e.Spec.FunctionName, ""}
	if e.Spec.UserID == "" {
		return []groupKey{all}
	}
	return []groupKey{all, {e.Namespace, e.Spec.FunctionName, e.Spec.UserID}}
}

func (ix *Index) file(e *fnv1.Execution) {
	x := entry{keyOf(e), e}
	for _, gk := range groupsOf(e) {
		ix.change(gk, classOf(e), func(t *tree) bool {
			t.ReplaceOrInsert(x)
			return true
		})
	}
}

func (ix *Index) unfile(e *fnv1.Execution) {
	x := entry{key: keyOf(e)}
	for _, gk := range groupsOf(e) {
		ix.change(gk, classOf(e), func(t *tree) bool {
			_, ok := t.Delete(x)
			return ok
		})
	}
}

// change publishes a new version of group gk whose partition of class c is
// write's change to its draft; write says whether it changed anything. A
// group or partition left empty is dropped: a deleted function leaves
// nothing behind.
func (ix *Index) change(gk groupKey, c class, write func(*tree) bool) {
	g := ix.groups[gk]
	var parts []part
	if g != nil {
		parts = g.parts
	}
	i, found := slices.BinarySearchFunc(parts, c, func(p part, c class) int { return compareClass(p.class, c) })
	p, before := part{class: c}, 0
	if found {
		p, before = parts[i], parts[i].tree.Len()
	} else {
		p.draft = btree.NewWithFreeListG(degree, less, ix.free)
	}
	if !write(p.draft) {
		return
	}
	after := p.draft.Len()
	next := &group{n: after - before}
	if g != nil {
		next.n += g.n
	}
	switch {
	case next.n == 0:
		delete(ix.groups, gk)
		return
	case after == 0:
		next.parts = slices.Delete(slices.Clone(parts), i, i+1)
	case found:
		p.tree = p.draft.Clone()
		next.parts = slices.Clone(parts)
		next.parts[i] = p
	default:
		p.tree = p.draft.Clone()
		next.parts = slices.Insert(slices.Clone(parts), i, p)
	}
	ix.groups[gk] = next
}
