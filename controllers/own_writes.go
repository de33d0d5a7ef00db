package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownWritesEntries bounds what ownWrites and sentDeletes remember: more
// than the Executions in flight at once, a few hundred bytes each.
const ownWritesEntries = 8192

// ownWrites remembers the operator's latest write to each Execution until
// its cache shows it. Right after a status write the cache may still hold
// the copy from before; a reconcile from that copy recomputes what was
// just written, and its write is refused as a conflict and retried (in
// the B2 burst, most of the writes above six per execution). A reconcile
// from a copy older than its own last write instead waits for the watch
// event that brings the write, which reconciles again; after grace it
// trusts the cache, in case another client wrote since. The zero value
// remembers nothing.
type ownWrites struct {
	clock clock.PassiveClock
	grace time.Duration
	last  *lru.Cache // types.UID → ownWrite
}

type ownWrite struct {
	resourceVersion string
	at              time.Time
}

func newOwnWrites(c clock.PassiveClock, grace time.Duration) ownWrites {
	return ownWrites{clock: c, grace: grace, last: lru.New(ownWritesEntries)}
}

// wrote notes obj as the API server answered a write of it.
func (w ownWrites) wrote(obj client.Object) {
	if w.last == nil {
		return
	}
	w.last.Add(obj.GetUID(), ownWrite{obj.GetResourceVersion(), w.clock.Now()})
}

// behind says how long still to wait for the cache to show the last write
// to cached (0: it does, or the wait is over).
func (w ownWrites) behind(cached client.Object) time.Duration {
	if w.last == nil {
		return 0
	}
	v, ok := w.last.Get(cached.GetUID())
	if !ok {
		return 0
	}
	last := v.(ownWrite)
	left := w.grace - w.clock.Since(last.at)
	if last.resourceVersion == cached.GetResourceVersion() || left <= 0 {
		w.last.Remove(cached.GetUID())
		return 0
	}
	return left
}

// sentDeletes remembers the UIDs of objects the operator deleted, so that a
// reconcile whose cache still shows one does not delete it again. The
// zero value remembers nothing.
type sentDeletes struct{ uids *lru.Cache }

func newSentDeletes() sentDeletes { return sentDeletes{lru.New(ownWritesEntries)} }

func (d sentDeletes) sent(uid types.UID) bool {
	if d.uids == nil {
		return false
	}
	_, ok := d.uids.Get(uid)
	return ok
}

func (d sentDeletes) add(uid types.UID) {
	if d.uids != nil {
		d.uids.Add(uid, struct{}{})
	}
}
