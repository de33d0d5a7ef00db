package execindex

import (
	"strconv"
	"strings"
	"time"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// CreatedAt is the creation time the facade shows and orders by. The API
// server keeps whole seconds; an ID made by the facade (20 hex characters:
// seconds, microseconds, random) carries the microseconds, so when its
// seconds agree with metadata.creationTimestamp the ID's time is used. This
// is apiserver's rule (times, used by toRecord), repeated here so that the
// index orders exactly as the facade does.
func CreatedAt(e *fnv1.Execution) time.Time {
	created := e.CreationTimestamp.Time
	if t, ok := idTime(e.Name); ok && t.Unix() == created.Unix() {
		return t
	}
	return created
}

// idTime reads the creation time in an ID made by the facade's NewID. It
// is a copy of apiserver's idTime: both must accept the same IDs.
func idTime(id string) (time.Time, bool) {
	if len(id) != 20 {
		return time.Time{}, false
	}
	sec, err1 := strconv.ParseInt(id[:8], 16, 64)
	usec, err2 := strconv.ParseInt(id[8:13], 16, 64)
	if err1 != nil || err2 != nil || usec >= 1e6 {
		return time.Time{}, false
	}
	return time.Unix(sec, usec*1000).UTC(), true
}

// key is a position in the default order: creation time ascending, then
// name. Seconds and nanoseconds are kept apart (not UnixNano) so that any
// time.Time, even the zero one, compares as time.Time.Compare does.
type key struct {
	sec  int64
	nsec int32
	name string
}

func keyOf(e *fnv1.Execution) key {
	t := CreatedAt(e)
	return key{sec: t.Unix(), nsec: int32(t.Nanosecond()), name: e.Name}
}

func (a key) compare(b key) int {
	switch {
	case a.sec < b.sec:
		return -1
	case a.sec > b.sec:
		return 1
	case a.nsec < b.nsec:
		return -1
	case a.nsec > b.nsec:
		return 1
	}
	return strings.Compare(a.name, b.name)
}

// class is what a filter can ask of an execution without looking at it:
// the partition of a function's executions it lives in.
type class struct {
	status  fnv1.ExecutionPhase
	trigger fnv1.Trigger
	// clientError marks a completed execution with a 4xx response, which
	// Appwrite 1.4 and 1.5 report as failed (see Filter.Report4xxAsFailed).
	clientError bool
}

// classOf reads an execution as apiserver's toRecord does: no trigger is "http"; no
// status yet is "waiting", or "scheduled" when it has a scheduledAt.
func classOf(e *fnv1.Execution) class {
	c := class{status: e.Status.Status, trigger: e.Spec.Trigger}
	if c.trigger == "" {
		c.trigger = fnv1.TriggerHTTP
	}
	if c.status == "" {
		c.status = fnv1.PhaseWaiting
		if e.Spec.ScheduledAt != nil {
			c.status = fnv1.PhaseScheduled
		}
	}
	code := e.Status.StatusCode
	c.clientError = c.status == fnv1.PhaseCompleted && code >= 400 && code < 500
	return c
}

// compareClass orders partitions so that a function's partitions are kept
// in one deterministic order.
func compareClass(a, b class) int {
	if c := strings.Compare(string(a.status), string(b.status)); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.trigger), string(b.trigger)); c != 0 {
		return c
	}
	switch {
	case a.clientError == b.clientError:
		return 0
	case !a.clientError:
		return -1
	}
	return 1
}
