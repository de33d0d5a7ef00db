package apiserver

import (
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
)

// A finished record never changes, yet a list renders the same records
// again on every request: in the B3 profile that was a third of the
// facade's CPU per list and most of its garbage. So the JSON of each
// finished record a list shows is kept, per way of showing it, and a
// list of records already shown is a few appends of stored bytes.
const (
	// renderedEntries bounds the records kept; with renderedMaxBytes
	// each, at most 32 MiB, however many records are stored.
	renderedEntries  = 8192
	renderedMaxBytes = 4 << 10
)

// renderedKey is one way of showing one version of an Execution: its
// format, whether the caller sees logs, and its Function's Appwrite ID
// (a label, which can change while the record does not).
type renderedKey struct {
	execution       types.NamespacedName
	uid             types.UID
	resourceVersion string
	format          format
	logs            bool
	functionID      string
}

// rawJSON is JSON rendered before, written as it is.
type rawJSON []byte

type renderedRecords struct{ cache *lru.Cache }

func newRenderedRecords() renderedRecords { return renderedRecords{lru.New(renderedEntries)} }

// render returns the JSON of e as toRecord(e, fn, logs).render(f) would,
// from what was kept when it can.
func (c renderedRecords) render(e *fnv1.Execution, fn *fnv1.Function, logs bool, f format) (rawJSON, error) {
	key := renderedKey{types.NamespacedName{Namespace: e.Namespace, Name: e.Name}, e.UID, e.ResourceVersion, f, logs, functionAppwriteID(fn)}
	if raw, ok := c.cache.Get(key); ok {
		return raw.(rawJSON), nil
	}
	raw, err := toRecord(e, fn, logs).render(f).appendJSON(nil)
	if err != nil {
		return nil, err
	}
	if e.Status.Status.IsFinished() && len(raw) <= renderedMaxBytes {
		c.cache.Add(key, rawJSON(raw))
	}
	return raw, nil
}
